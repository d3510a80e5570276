"""The simulator's scenario knobs: env ``REELMILL_SIM_<FIELD>`` at start, ``PATCH /_sim/config`` at run time.

Durations are "upstream seconds"; the simulator multiplies them by ``time_scale``. Every knob's default is the
simulator's original behaviour; ``README.md`` describes each.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

RenderShape = Literal["A", "B", "both"]
OutputLink = Literal["live", "expired_403", "expired_404"]
DownloadLink = Literal["live", "gone_404", "gone_410"]
OutputBody = Literal["mp4", "html"]
ErrorField = Literal["message", "msg", "both"]
HeartbeatForm = Literal["rotate", "comment", "empty_data", "typed"]
ExpiredTokenForm = Literal["code_1001", "code_1010", "code_1011", "http_401"]
LostSessionForm = Literal["default", "code_1002", "http_404"]
EmptyDraftForm = Literal["null", "empty_object", "no_tracks", "empty_tracks"]
RetryAfterForm = Literal["seconds", "http_date", "absent"]
StreamSlotUntil = Literal["run_end", "disconnect"]


class SimConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELMILL_SIM_", extra="forbid", validate_assignment=True)

    time_scale: float = Field(1.0, gt=0)
    message_seconds: float = Field(20.0, ge=0)
    edit_at: float = Field(0.10, ge=0, le=0.8)  # share of an agent run after which its edit lands
    render_seconds: float = Field(60.0, ge=0)
    heartbeat_every_s: float = Field(5.0, gt=0)
    silent_share: float = Field(0.3, ge=0, le=1)
    temporary_issue_share: float = Field(0.1, ge=0, le=1)
    render_fail_share: float = Field(0.0, ge=0, le=1)
    render_shape: RenderShape = "both"
    legacy_events: bool = False
    msg_field: bool = False  # older switch: also put the error text in "msg" (same as error_field="both")
    error_field: ErrorField = "message"  # where error replies put their text
    credits_per_message: int = Field(10, ge=0)
    anonymous_credits: int = Field(100, ge=0)
    token_ttl_s: int = Field(604800, gt=0)
    anon_per_client_limit: int = Field(5, ge=0)
    seed: int = 0
    # --- documented variants (see forms.py) ---
    heartbeat_form: HeartbeatForm = "rotate"  # rotate: ": ping", "data:", {"type":"heartbeat"} in turn
    expired_token_form: ExpiredTokenForm = "code_1001"  # HTTP 200 with the code, or HTTP 401
    lost_session_form: LostSessionForm = "default"  # default: 404 {"detail"} on /run_sse, code 1002 elsewhere
    empty_draft_form: EmptyDraftForm = "null"  # a fresh session's draft: null, {}, {"t": []}, tracks without sg
    retry_after_form: RetryAfterForm = "seconds"  # Retry-After on 429s (a fault may pick its own)
    # --- capacity per token (see capacity.py); 0 = unlimited ---
    max_streams_per_token: int = Field(0, ge=0)  # concurrent agent runs (accept to end, server-side)
    stream_slot_until: StreamSlotUntil = "run_end"  # a stream slot is freed when the run ends, or the connection
    max_renders_per_token: int = Field(0, ge=0)  # concurrent renders (submit to completed/failed/canceled)
    rps_per_token: float = Field(0.0, ge=0)  # calls per wall-clock second, token bucket
    rps_burst: float = Field(0.0, ge=0)  # the bucket's size; 0: max(1, rps_per_token)
    # --- state that survives a restart (see persist.py) ---
    state_file: str | None = None  # set at start only
    state_save_delay_s: float = Field(0.5, ge=0)  # wall-clock debounce of the state file's writes
    # --- render outputs (see mp4.py, outputs.py) ---
    output_bytes: int = Field(0, ge=0, le=4_000_000_000)  # 0: a few KB; else the file's exact size
    output_link: OutputLink = "live"  # the output URL (a CDN link): live, or already expired (403 / 404)
    output_url_ttl_s: float = Field(0.0, ge=0)  # the output URL expires this long after completion; 0: never
    download_link: DownloadLink = "live"  # GET /api/render/proxy/<id>/download: live, or gone (404 / 410)
    output_body: OutputBody = "mp4"  # html: both links answer 200 with an HTML error page instead
    log_level: str = "warning"

    @property
    def error_fields(self) -> tuple[str, ...]:
        """The error replies' text fields: ``message``, ``msg`` or both."""
        fields = ("message",) if self.error_field != "msg" else ()
        return (*fields, "msg") if self.error_field != "message" or self.msg_field else fields

    def scaled(self, upstream_seconds: float) -> float:
        """Wall-clock seconds for ``upstream_seconds`` of upstream time."""
        return upstream_seconds * self.time_scale

    def patched(self, changes: dict[str, Any]) -> SimConfig:
        """A new config with ``changes`` applied; unknown fields or bad values raise ``ValidationError``."""
        return SimConfig.model_validate({**self.model_dump(), **changes})

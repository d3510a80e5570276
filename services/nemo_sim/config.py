"""The simulator's scenario knobs: env ``REELMILL_SIM_<FIELD>`` at start, ``PATCH /_sim/config`` at run time.

Durations are "upstream seconds"; the simulator multiplies them by ``time_scale``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

RenderShape = Literal["A", "B", "both"]


class SimConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELMILL_SIM_", extra="forbid", validate_assignment=True)

    time_scale: float = Field(1.0, gt=0)
    message_seconds: float = Field(20.0, ge=0)
    render_seconds: float = Field(60.0, ge=0)
    heartbeat_every_s: float = Field(5.0, gt=0)
    silent_share: float = Field(0.3, ge=0, le=1)
    temporary_issue_share: float = Field(0.1, ge=0, le=1)
    render_fail_share: float = Field(0.0, ge=0, le=1)
    render_shape: RenderShape = "both"
    legacy_events: bool = False
    msg_field: bool = False
    credits_per_message: int = Field(10, ge=0)
    anonymous_credits: int = Field(100, ge=0)
    token_ttl_s: int = Field(604800, gt=0)
    anon_per_client_limit: int = Field(5, ge=0)
    seed: int = 0
    log_level: str = "warning"

    def scaled(self, upstream_seconds: float) -> float:
        """Wall-clock seconds for ``upstream_seconds`` of upstream time."""
        return upstream_seconds * self.time_scale

    def patched(self, changes: dict[str, Any]) -> SimConfig:
        """A new config with ``changes`` applied; unknown fields or bad values raise ``ValidationError``."""
        return SimConfig.model_validate({**self.model_dump(), **changes})

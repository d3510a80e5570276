"""The one settings object, read from the environment (prefix ``REELMILL_``) once per process.

Secrets are ``SecretStr`` so that a repr, a log line or an error never shows them.
Laptop defaults: with no ``REELMILL_DATABASE_URL`` a SQLite file in the data directory; with no
``REELMILL_REDIS_URL`` the launcher (``reelmill up``) starts an embedded Redis-compatible server.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PRODUCTION_NEMO_BASE_URL = "https://mega-api-prod.nemovideo.ai"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELMILL_", extra="ignore", populate_by_name=True)

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Path(".reelmill")
    database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)  # connections per process (plus twice as many overflow)
    redis_url: str | None = None
    # The broker's password, kept out of the URL (so a logged URL never carries it); any character works.
    redis_password: SecretStr | None = None

    # --- upstream (NemoVideo) -----------------------------------------------------------------
    nemo_base_url: str = PRODUCTION_NEMO_BASE_URL
    nemo_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REELMILL_NEMO_TOKEN", "NEMO_TOKEN")
    )
    nemo_client_id: str | None = None  # stable X-Client-Id for anonymous tokens; derived when unset
    skill_platform: str = "unknown"  # X-Skill-Platform: clawhub / cursor / unknown
    nemo_timeout_s: float = 30.0  # connect/read timeout for plain (non-stream) calls
    sse_max_s: float = 900.0  # the upstream's own 15-minute cap on one message stream
    sse_idle_s: float = 180.0  # a stream with no byte at all for this long is dead
    render_poll_s: float = 30.0
    render_max_s: float = 1800.0  # a render not finished after this long fails the job
    render_retries: int = Field(2, ge=0, le=10)  # a render that failed upstream is submitted again this often

    # --- pipeline -----------------------------------------------------------------------------
    lease_s: float = 60.0  # a claimed step's lease; renewed while the step runs
    queue_grace_s: float = 300.0  # a queued step not picked up this long after it was due is sent again
    sweep_interval_s: float = 15.0
    max_step_attempts: int = 8  # retries of one transient upstream failure before the job fails
    # after a send whose fate is unknown (a crash mid-stream), the draft must hold still this long before the edit
    # counts as landed; also the first wait for a draft that is not ready yet
    edit_settle_s: float = 10.0
    streams_per_process: int = 5000  # message streams one streams worker process holds at once (its event loop)
    loop_db_threads: int = 16  # threads doing the event loop's database work
    poll_tick_s: float = 0.5  # how often the poller looks for due renders (each is polled every render_poll_s)
    retry_base_s: float = 2.0
    retry_max_s: float = 300.0
    rate_limit_wait_s: float = 30.0  # 429 without Retry-After
    still_working_every_s: float = 120.0
    progress_event_min_s: float = 2.0
    uploads_dir: Path | None = None  # multipart job files; default <data_dir>/uploads
    uploads_max_age_s: float = 24 * 3600.0  # an upload no open job names is removed once older than this
    credit_admission: bool = True  # refuse work the upstream balance cannot pay for (402)
    cost_estimate: dict[str, int] = Field(
        default_factory=lambda: {
            "ai-video-generator-free-kapwing": 10,
            "free-kling-ai-video-generation": 10,
        }
    )

    # --- upstream pace: one per credential, shared by every worker (shared/pace, docs/pacing.md) ------
    upstream_max_streams: int = Field(default=10, ge=1)  # concurrent SSE message streams
    upstream_max_renders: int = Field(default=5, ge=1)  # concurrent renders, submit to end
    upstream_rps: float = Field(default=5.0, gt=0)  # upstream calls per second, all classes together
    # jobs started (admitted) per credential at once; None: 2 x max streams + max renders (services/worker/scheduler.py)
    upstream_max_in_flight: int | None = Field(default=None, ge=1)
    upstream_min_rps: float = Field(default=0.2, gt=0)  # AIMD never halves a class's rate below this
    upstream_rps_step: float = Field(default=0.5, gt=0)  # AIMD: rate added after a window of successes
    upstream_recover_s: float = Field(default=5.0, gt=0)  # AIMD: a window is this many seconds of calls

    # --- API ----------------------------------------------------------------------------------
    public_url: str = "http://127.0.0.1:8000"  # base for the job's urls.get/urls.cancel
    prefer_wait_max_s: int = 60
    events_stream_max_s: float = 600.0  # one `GET /v1/jobs/{id}/events` stream; clients resume with Last-Event-ID
    max_metadata_bytes: int = 4096
    max_prompt_chars: int = 10_000
    max_assets: int = 20  # per job, and per follow-up message
    max_turns_per_job: int = Field(default=100, ge=1)  # a job's steps plus its follow-up messages
    batch_max_rows: int = 100_000
    batch_max_in_flight: int = 50
    # request bodies, by route class; each is enforced while the body streams in (413 names the limit)
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)  # every JSON body
    max_multipart_bytes: int = Field(default=2 * 1024**3, ge=1024)  # a job with its files (each also has its profile's)
    batch_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)  # a batch's CSV file
    max_form_parts: int = Field(default=50, ge=2)  # parts in one multipart body
    redeliver_per_minute: int = Field(default=30, ge=1)  # `POST /v1/deliveries/{id}/redeliver`, per tenant
    credits_show_balance: bool = False  # `GET /v1/credits` and 402s show the upstream balance (shared by all tenants)
    metrics_refresh_s: float = 15.0  # /metrics reads the database gauges at most this often (shared by replicas)

    # --- artifacts: every render's MP4 copied to storage the operator controls (docs/artifacts.md) -------------
    # "" (default): the local directory <data_dir>/artifacts; a path or file:///path: that directory;
    # s3://bucket/prefix: an S3-compatible bucket (credentials the standard AWS way); "none": no mirroring.
    artifact_store: str = ""
    s3_endpoint_url: str | None = None  # for non-AWS S3-compatible stores (MinIO, R2, Ceph...)
    artifact_presign: bool = False  # GET /v1/jobs/{id}/output answers 302 to a pre-signed URL (S3 stores)
    artifact_presign_ttl_s: int = 900
    artifact_retention_days: float | None = None  # None: keep forever; else the sweeper deletes older artifacts
    artifact_max_attempts: int = 8  # download/store attempts before the artifact is marked failed
    artifact_retry_base_s: float = 10.0
    artifact_retry_max_s: float = 900.0
    artifact_max_bytes: int = 16 * 1024**3  # a bigger body is refused (an upstream render is far smaller)

    # --- webhooks and outbound URLs -----------------------------------------------------------
    webhook_timeout_s: float = 15.0  # one attempt, whole: DNS, connect, TLS, request, answer
    webhook_schedule_scale: float = 1.0  # multiplies the Standard Webhooks retry schedule (tests: 0.001)
    webhook_rotation_window_s: float = 24 * 3600.0
    outbound_allow_http: bool = False  # production sends https only
    outbound_allow_private: bool = False  # lifts the address rule for every private/loopback target (tests)
    # exact `host:port` pairs outbound URLs may reach even though private, loopback or plain http (`reelmill up
    # --sim`: the simulator and a local receiver). Comma-separated or a JSON list in the environment.
    outbound_allow_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- webhooks: test safety (added by the webhooks work) -----------------------------------
    # Tests set this: webhook deliveries go only to `localhost` or a loopback IP literal, anything else is refused
    # without a DNS lookup, so a test job carrying a public example URL can never send traffic off the machine.
    webhook_loopback_only: bool = False

    # --- operators ----------------------------------------------------------------------------
    task_events: bool = True  # workers send task events (what Flower shows); costs Redis traffic per task
    flower_user: str = "admin"
    flower_password: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = True
    beat_schedule: Path | None = None  # beat's schedule file; default <data_dir>/celerybeat-schedule

    # --- the CLI as an API client ------------------------------------------------------------
    api_url: str | None = None  # the API `reelmill submit` / `batch` talk to; default http://127.0.0.1:8000
    api_key: SecretStr | None = None  # REELMILL_API_KEY: the one name for the key, in the CLI and the banner
    cli_poll_s: float = Field(1.0, gt=0)  # how often `submit --wait` / `batch status --wait` ask the API

    @field_validator("s3_endpoint_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("artifact_store")
    @classmethod
    def _artifact_store(cls, value: str) -> str:
        raw = value.strip()
        if raw.startswith("s3://") and not raw[5:].split("/", 1)[0]:
            raise ValueError("REELMILL_ARTIFACT_STORE: name the bucket, as s3://bucket/prefix")
        if "://" in raw and not raw.startswith(("s3://", "file:///")):
            raise ValueError("REELMILL_ARTIFACT_STORE: use a directory, file:///dir, s3://bucket/prefix or none")
        return raw

    @field_validator("outbound_allow_addresses", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        if isinstance(value, str):  # comma-separated, or a JSON list
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            return [canonical_address(str(v)) for v in value if str(v).strip()]
        return value

    # --- derived ------------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'reelmill.db').resolve()}"

    @property
    def effective_redis_url(self) -> str | None:
        """``redis_url`` with ``redis_password`` put in (URL-quoted); None when no URL is configured."""
        if not self.redis_url or self.redis_password is None:
            return self.redis_url
        return with_password(self.redis_url, self.redis_password.get_secret_value())

    @property
    def effective_beat_schedule(self) -> Path:
        return self.beat_schedule or (self.data_dir / "celerybeat-schedule")

    @property
    def effective_uploads_dir(self) -> Path:
        return self.uploads_dir or (self.data_dir / "uploads")

    @property
    def effective_artifact_store(self) -> str:
        """The artifact store as a URL: ``none``, ``file:///abs/dir`` or ``s3://bucket/prefix``."""
        raw = self.artifact_store.strip()
        if raw.lower() == "none":
            return "none"
        if raw.startswith(("s3://", "file://")):
            return raw
        return (Path(raw) if raw else self.data_dir / "artifacts").resolve().as_uri()


def with_password(url: str, password: str) -> str:
    """``url`` (redis://host:port/db) with ``password`` as its credential, quoted so that any character works."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f":{quote(password, safe='')}@{host}"))


def canonical_address(text: str) -> str:
    """``host:port`` as the outbound guard compares it: host lower-case, IPv6 in brackets, port a number."""
    text = text.strip().lower()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port (IPv6 as [addr]:port)")
    if host.startswith("[") and host.endswith("]"):
        host = f"[{ipaddress.IPv6Address(host[1:-1])}]"
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"{text!r} is not host:port (IPv6 as [addr]:port)")
    return f"{host}:{int(port)}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()

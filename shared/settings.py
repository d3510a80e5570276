"""The one settings object, read from the environment (prefix ``REELMILL_``) once per process.

Secrets are ``SecretStr`` so that a repr, a log line or an error never shows them.
Laptop defaults: with no ``REELMILL_DATABASE_URL`` a SQLite file in the data directory; with no
``REELMILL_REDIS_URL`` the launcher (``reelmill up``) starts an embedded Redis-compatible server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PRODUCTION_NEMO_BASE_URL = "https://mega-api-prod.nemovideo.ai"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELMILL_", extra="ignore", populate_by_name=True)

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Path(".reelmill")
    database_url: str | None = None
    redis_url: str | None = None

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
    max_metadata_bytes: int = 4096
    max_prompt_chars: int = 10_000
    max_assets: int = 20
    batch_max_rows: int = 100_000
    batch_max_bytes: int = 50 * 1024 * 1024
    batch_max_in_flight: int = 50

    # --- webhooks and outbound URLs -----------------------------------------------------------
    webhook_timeout_s: float = 15.0
    webhook_schedule_scale: float = 1.0  # multiplies the Standard Webhooks retry schedule (tests: 0.001)
    webhook_rotation_window_s: float = 24 * 3600.0
    outbound_allow_http: bool = False  # production sends https only
    outbound_allow_private: bool = False  # tests and `reelmill up` allow loopback/private targets

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

    # --- derived ------------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'reelmill.db').resolve()}"

    @property
    def effective_uploads_dir(self) -> Path:
        return self.uploads_dir or (self.data_dir / "uploads")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()

"""Jobs and their turns.

A job is one upstream session. Its work is a list of turns, each an instruction (with optional assets) that becomes
one SSE message and one render: a plain job has one turn, a job with `steps` has several, and every follow-up
message (`POST /v1/jobs/{id}/messages`) appends one (a revision). The turn row is the checkpoint the flow reads and
writes at every step; the job row carries the status, stage, lease and upstream session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint, text
from sqlmodel import Column, Field, SQLModel

from shared.tables.columns import enum_col, json_col, ts
from shared.tables.enums import JobStatus, MessageState, Stage, TurnStatus


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency"),
        Index("ix_jobs_tenant_created", "tenant_id", "id"),
        Index("ix_jobs_batch_status", "batch_id", "status"),
        Index("ix_jobs_status_lease", "status", "lease_until"),
        # the scheduler's picks: jobs waiting to start, and jobs waiting for NemoVideo capacity, per tenant
        Index(
            "ix_jobs_waiting",
            "tenant_id",
            "stage",
            "priority",
            "id",
            postgresql_where=text("stage IN ('queued', 'throttled')"),
            sqlite_where=text("stage IN ('queued', 'throttled')"),
        ),
        Index(
            "ix_jobs_deadline",
            "deadline_at",
            postgresql_where=text("deadline_at IS NOT NULL"),
            sqlite_where=text("deadline_at IS NOT NULL"),
        ),
        # parked jobs (a render poll, a retry after a delay): the scheduler and the poller take them when due
        Index(
            "ix_jobs_wake",
            "wake_at",
            postgresql_where=text("wake_at IS NOT NULL"),
            sqlite_where=text("wake_at IS NOT NULL"),
        ),
        # batch admission: the oldest rows still waiting to start
        Index(
            "ix_jobs_batch_waiting",
            "batch_id",
            "batch_line",
            postgresql_where=text("stage = 'queued'"),
            sqlite_where=text("stage = 'queued'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    batch_id: str | None = Field(default=None, foreign_key="batches.id", max_length=40)
    batch_line: int | None = None  # the CSV line the job came from
    external_id: str | None = Field(default=None, max_length=200)

    profile: str = Field(max_length=80)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    assets: list[str] = json_col(list)
    files: list[dict[str, Any]] = json_col(list)  # multipart uploads kept on disk: {"path","filename","size"}
    output_format: str = Field(default="mp4", max_length=10)
    output_quality: str = Field(default="high", max_length=10)
    language: str = Field(default="en", max_length=16)
    webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_events: list[str] = json_col(list)
    meta: dict[str, Any] = json_col(dict, name="metadata")
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)

    priority: int = 1  # 0 high, 1 normal, 2 low (shared/domain/priority.py): within a tenant, high goes first
    deadline_at: datetime | None = ts()  # `Cancel-After`: not finished by then, the job is canceled
    status: JobStatus = enum_col(JobStatus, JobStatus.queued)  # indexed with lease_until
    stage: Stage = enum_col(Stage, Stage.queued, length=20)
    resume_stage: Stage | None = enum_col(Stage, None, length=20, nullable=True)  # what a throttled job runs next
    progress: int = 0
    output: dict[str, Any] | None = json_col(lambda: None, nullable=True)  # the latest turn's output
    error_code: str | None = Field(default=None, max_length=40)
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = ts(nullable=False, now=True)
    started_at: datetime | None = ts()
    completed_at: datetime | None = ts()
    updated_at: datetime = ts(nullable=False, now=True)

    # upstream session
    session_id: str | None = Field(default=None, max_length=40)
    task_id: str | None = Field(default=None, max_length=80)
    upstream_user_id: str | None = Field(default=None, max_length=100)

    # flow bookkeeping: which turn runs, a version that makes stale task messages harmless, the lease
    turn_index: int = 0
    step_seq: int = 0
    attempts: int = 0  # consecutive transient failures of the current step
    sessions_lost: int = 0  # upstream sessions lost so far (each a replay, each paid for): bounded like attempts
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = ts()
    wake_at: datetime | None = ts()  # parked until then (then dispatched, or polled when at render_poll)
    cancel_requested: bool = False
    last_progress_event_at: datetime | None = ts()
    # the fingerprint of the session's draft as last seen (shared/nemo/draft.py); None: unknown, read it first
    draft_fp: str | None = Field(default=None, max_length=32)


class JobTurn(SQLModel, table=True):
    __tablename__ = "job_turns"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_job_turns_job_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", max_length=40)  # indexed by uq_job_turns_job_seq
    seq: int
    kind: str = Field(default="step", max_length=16)  # "step" (in the job at creation) or "revision"
    instruction: str = Field(sa_column=Column(Text, nullable=False))
    assets: list[str] = json_col(list)
    intent: str = Field(default="sse", max_length=16)
    status: TurnStatus = enum_col(TurnStatus, TurnStatus.pending)

    uploaded: list[dict[str, Any]] = json_col(list)
    upload_done: bool = False
    message_state: MessageState = enum_col(MessageState, MessageState.pending)
    message_attempts: int = 0
    message_sent_at: datetime | None = ts()  # when the latest send began
    draft_before: str | None = Field(default=None, max_length=64)  # the draft's fingerprint before the send
    messages: list[str] = json_col(list)
    tool_calls: list[str] = json_col(list)
    heartbeats: int = 0
    silent: bool | None = None
    draft: dict[str, Any] | None = json_col(lambda: None, nullable=True)
    timeline: str | None = Field(default=None, sa_column=Column(Text))

    render_id: str | None = Field(default=None, max_length=80, index=True)
    render_submitted: bool = False
    render_status: str | None = Field(default=None, max_length=16)
    render_progress: int = 0
    render_started_at: datetime | None = ts()
    renders_failed: int = 0  # renders of this turn that failed upstream (each submitted again, up to a limit)
    output: dict[str, Any] | None = json_col(lambda: None, nullable=True)
    error_code: str | None = Field(default=None, max_length=40)
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    suggested_job: dict[str, Any] | None = json_col(lambda: None, nullable=True)  # after the session was lost
    created_at: datetime = ts(nullable=False, now=True)
    completed_at: datetime | None = ts()

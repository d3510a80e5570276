"""Artifacts: the copy of each render's output in storage the operator controls, one row per (job, turn).

The row is the truth about the copy: `pending` while a worker mirrors it (with its attempts and the next try),
`stored` with the object's key, sha256 and size, `failed` with the reason, `expired` once retention deleted it.
Mirroring never touches the job row: a job is `succeeded` when its render is.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from shared.tables.columns import ts


class ArtifactStatus(StrEnum):
    pending = "pending"
    stored = "stored"
    failed = "failed"
    expired = "expired"


class Artifact(SQLModel, table=True):
    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("job_id", "turn_seq", name="uq_artifacts_job_turn"),
        Index("ix_artifacts_status_next", "status", "next_attempt_at"),
        Index("ix_artifacts_status_expires", "status", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=40)  # "art_…"
    job_id: str = Field(foreign_key="jobs.id", max_length=40)  # indexed by uq_artifacts_job_turn
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    turn_seq: int  # the turn (step or revision) whose render this is: `?revision=N`
    render_id: str = Field(max_length=80)
    source_url: str | None = Field(default=None, sa_column=Column(Text))  # the upstream's output URL (may expire)

    status: str = Field(default=ArtifactStatus.pending.value, max_length=16)
    reason: str | None = Field(default=None, sa_column=Column(Text))  # why it failed (or the last retry's cause)
    store_url: str = Field(max_length=1024)  # the store it goes to: file:///dir or s3://bucket/prefix
    key: str = Field(max_length=512)  # the object's key inside that store
    sha256: str | None = Field(default=None, max_length=64)
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    content_type: str | None = Field(default=None, max_length=100)

    attempts: int = 0
    next_attempt_at: datetime | None = ts()
    lease_owner: str | None = Field(default=None, max_length=80)  # the worker mirroring it right now
    lease_until: datetime | None = ts()  # a queued or running mirror; the sweeper re-sends it after this
    created_at: datetime = ts(nullable=False, now=True)
    updated_at: datetime = ts(nullable=False, now=True)
    stored_at: datetime | None = ts()
    expires_at: datetime | None = ts()

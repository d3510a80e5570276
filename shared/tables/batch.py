"""Batches (a CSV of jobs) and the rows an `on_error=skip` batch left out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text
from sqlmodel import Column, Field, SQLModel

from shared.tables.columns import enum_col, json_col, ts
from shared.tables.enums import BatchStatus


class Batch(SQLModel, table=True):
    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_tenant_created", "tenant_id", "id"),  # the tenant's list, newest first
        # at most one retry per batch: a double-clicked retry finds the first one (shared/domain/batch_retry.py)
        Index("ux_batches_retry_of", "retry_of", unique=True),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=40)
    status: BatchStatus = enum_col(BatchStatus, BatchStatus.queued)
    total: int = 0  # input rows, jobs and skipped rows together
    max_in_flight: int = 50
    priority: int = 1  # its jobs' priority (shared/domain/priority.py)
    cancel_after_s: float | None = None  # each job's deadline, counted from the batch's creation
    on_error: str = Field(default="reject", max_length=10)
    webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_events: list[str] = json_col(list)
    paused_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = ts(nullable=False, now=True)
    completed_at: datetime | None = ts()
    completed_event_sent: bool = False
    retry_of: str | None = Field(default=None, foreign_key="batches.id", max_length=40)  # the batch it re-runs


class BatchRowError(SQLModel, table=True):
    __tablename__ = "batch_row_errors"

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batches.id", index=True, max_length=40)
    line: int
    external_id: str | None = Field(default=None, max_length=200)
    column: str | None = Field(default=None, max_length=100)
    message: str = Field(sa_column=Column(Text, nullable=False))

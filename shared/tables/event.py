"""The outbox: every job event is a row, written in the transaction of the change it reports.

The same rows back the live `GET /v1/jobs/{id}/events` stream (resumable by `seq`) and the webhooks: a delivery
row per (event, URL) is written alongside when the job's webhook filter wants the event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, Text
from sqlmodel import Column, Field, SQLModel

from shared.tables.columns import enum_col, json_col, ts
from shared.tables.enums import DeliveryStatus

# BIGINT on PostgreSQL, but SQLite only autoincrements an INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_job_seq", "job_id", "seq"),)

    seq: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True, autoincrement=True))
    id: str = Field(unique=True, max_length=40)  # "msg_…": the webhook-id
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    job_id: str | None = Field(default=None, max_length=40)
    batch_id: str | None = Field(default=None, max_length=40, index=True)
    type: str = Field(max_length=40)
    data: dict[str, Any] = json_col(dict)
    created_at: datetime = ts(nullable=False, now=True)


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_status_next", "status", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=40)
    event_id: str = Field(foreign_key="events.id", index=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    job_id: str | None = Field(default=None, max_length=40, index=True)
    url: str = Field(max_length=2048)
    status: DeliveryStatus = enum_col(DeliveryStatus, DeliveryStatus.pending)
    attempts: int = 0
    next_attempt_at: datetime | None = ts()
    last_status_code: int | None = None
    created_at: datetime = ts(nullable=False, now=True)
    completed_at: datetime | None = ts()


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="deliveries.id", index=True, max_length=40)
    attempted_at: datetime = ts(nullable=False, now=True)
    status_code: int | None = None
    latency_ms: int = 0
    excerpt: str | None = Field(default=None, sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))


class GoneEndpoint(SQLModel, table=True):
    """A URL that answered 410 Gone: nothing more is sent to it for that tenant."""

    __tablename__ = "gone_endpoints"

    tenant_id: str = Field(foreign_key="tenants.id", primary_key=True, max_length=40)
    url: str = Field(primary_key=True, max_length=2048)
    gone_at: datetime = ts(nullable=False, now=True)

"""Tenants and their API keys. Keys are stored as SHA-256 digests: they are random, so no KDF is needed."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from shared.tables.columns import ts


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(unique=True, index=True, max_length=200)
    webhook_secret: str = Field(max_length=200)  # "whsec_<base64>"; never printed after creation
    previous_webhook_secret: str | None = Field(default=None, max_length=200)
    previous_secret_until: datetime | None = ts()
    created_at: datetime = ts(nullable=False, now=True)
    # fair shares of NemoVideo's capacity (services/worker/scheduler.py): a tenant's weight, and its own cap
    weight: int = 1
    max_in_flight: int | None = None


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=40)
    prefix: str = Field(max_length=20)  # the key's visible head, for humans telling keys apart
    key_hash: str = Field(unique=True, index=True, max_length=64)
    created_at: datetime = ts(nullable=False, now=True)
    revoked_at: datetime | None = ts()

"""The upstream credential store: one row per credential, shared by every worker and API process.

An anonymous token is minted once (per client id) and reused until it expires; never one per job.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from shared.tables.columns import ts


class UpstreamCredential(SQLModel, table=True):
    __tablename__ = "upstream_credentials"

    name: str = Field(primary_key=True, max_length=40)  # "default": the one the service uses
    kind: str = Field(default="anonymous", max_length=20)  # "anonymous" | "configured"
    client_id: str = Field(max_length=64)
    token: str | None = Field(default=None, max_length=500)  # a secret: never logged or returned
    user_id: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = ts()
    exhausted_at: datetime | None = ts()  # the upstream said 2001 for this token
    minted_at: datetime | None = ts()
    mints: int = 0

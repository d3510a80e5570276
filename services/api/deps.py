"""Request dependencies as `Annotated` aliases, so handlers stay short.

A request holds at most one database connection at a time: authentication ran (and gave its connection back) in
the perimeter before the route; a route then takes one session, for writing (`SessionDep`: on SQLite its
transaction takes the write lock up front and waits for it) or for reading only (`ReadSessionDep`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from services.api.perimeter import tenant_of
from shared.db import get_engine, reader_engine
from shared.tables import Tenant

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="Authorization: Bearer <API key>")


def get_session() -> Iterator[Session]:
    """A session for one request that writes. Handlers commit explicitly; anything uncommitted is rolled back."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def get_read_session() -> Iterator[Session]:
    """A session for one request that only reads."""
    with Session(reader_engine(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


async def current_tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Tenant:
    """The tenant the perimeter authenticated (services/api/perimeter.py), or, for a route outside it, the one
    the header's key belongs to."""
    tenant = request.scope.get("state", {}).get("tenant")
    if isinstance(tenant, Tenant):
        return tenant
    return await tenant_of(request.headers)


TenantDep = Annotated[Tenant, Depends(current_tenant)]

"""Request dependencies as `Annotated` aliases, so handlers stay short."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from shared.db import get_engine
from shared.domain.errors import Unauthorized
from shared.domain.tenants import authenticate
from shared.tables import Tenant


def get_session() -> Iterator[Session]:
    """A session for one request. Handlers commit explicitly; anything uncommitted is rolled back."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_tenant(request: Request, session: SessionDep) -> Tenant:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    tenant = authenticate(session, key.strip())
    session.expunge(tenant)
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]

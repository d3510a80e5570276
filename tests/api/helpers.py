"""Helpers for the API tests: jobs that stay where a test put them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from shared.db import session_scope
from shared.tables import Job
from shared.timeutil import utcnow
from tests.batches.helpers import end_open_jobs, recording


def hold(*job_ids: str) -> None:
    """Push the jobs' leases an hour out: a session-wide sweeper (other test files start one) must not hand them to
    a worker while a test looks at them queued."""
    with session_scope() as session:
        session.exec(  # type: ignore[call-overload]
            update(Job).where(Job.id.in_(job_ids)).values(lease_until=utcnow() + timedelta(hours=1))
        )


@pytest.fixture()
def no_dispatch() -> Iterator[None]:
    """Nothing reaches Celery while the test runs."""
    with recording():
        yield


def cancel_open(*tenant_names: str) -> None:
    for name in tenant_names:
        end_open_jobs(name)


def forbid_name_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every DNS lookup of a host name fail (and record it); IP literals still connect (the simulator,
    PostgreSQL and Redis are all 127.0.0.1). Returns the names that were looked up."""
    import ipaddress
    import socket

    real = socket.getaddrinfo
    asked: list[str] = []

    def lookup(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            asked.append(text)
            raise socket.gaierror(socket.EAI_NONAME, "no lookups in this test") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return asked

"""The `hooked` fixture: a fresh tenant and a receiver on loopback that verifies with that tenant's secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from shared.db import session_scope
from shared.domain import dispatch
from shared.tables import Delivery
from tests.utils.stack import Tenant as TestTenant
from tests.webhooks.helpers import Hooked, RecordingDispatcher, tenant_row
from tests.webhooks.receiver import Receiver


@pytest.fixture()
def hooked(api, tenant: TestTenant) -> Iterator[Hooked]:
    secret = api.get("/v1/webhooks/secret", headers=tenant.headers).json()["secret"]
    rx = Receiver(secrets=[secret]).start()
    hooked = Hooked(tenant, tenant_row(tenant.name).id, secret, rx)
    try:
        yield hooked
    finally:
        rx.stop()
        stop_pending(hooked.tenant_id)


def stop_pending(tenant_id: str) -> None:
    """Leave nothing for the session's sweeper to resend to a port a later test's receiver may have taken."""
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.tenant_id == tenant_id, Delivery.status == "pending")
            .values(status="failed", next_attempt_at=None)
        )


@pytest.fixture()
def tenant_b(database: str) -> TestTenant:
    """A second tenant, to show it cannot see or touch the first one's deliveries."""
    from tests.utils.stack import new_tenant

    return new_tenant("other")


@pytest.fixture()
def recorder(api) -> Iterator[RecordingDispatcher]:
    """Nothing reaches Celery while the test runs: deliveries are driven in-process (`deliver(id)`)."""
    previous = dispatch.current()
    rec = RecordingDispatcher()
    dispatch.install(rec)
    try:
        yield rec
    finally:
        dispatch.install(previous)

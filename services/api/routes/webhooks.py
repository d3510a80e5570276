"""Webhooks: the signing secret (read, rotate), a job's deliveries, and redelivery.

The secret appears in the replies of the two secret endpoints only (with `Cache-Control: no-store`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response

from services.api.deps import SessionDep, TenantDep
from shared.domain.tenants import rotate_webhook_secret
from shared.settings import get_settings
from shared.tables import Tenant
from shared.timeutil import as_utc, iso, utcnow
from shared.webhooks.deliveries import delivery_public, job_deliveries, redeliver

router = APIRouter(tags=["webhooks"])


def secret_view(tenant: Tenant) -> dict[str, Any]:
    until = as_utc(tenant.previous_secret_until)
    previous = None
    if tenant.previous_webhook_secret and until and until > utcnow():
        previous = {"secret": tenant.previous_webhook_secret, "expires_at": iso(until)}
    return {"secret": tenant.webhook_secret, "previous": previous}


@router.get("/v1/webhooks/secret", summary="The webhook signing secret (and the previous one during a rotation)")
def read_secret(tenant: TenantDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    return secret_view(tenant)


@router.post("/v1/webhooks/secret/rotate", summary="Rotate the webhook signing secret")
def rotate_secret(tenant: TenantDep, session: SessionDep, response: Response) -> dict[str, Any]:
    """A new secret signs from now on; the old one keeps signing too until `previous.expires_at`."""
    row = session.get_one(Tenant, tenant.id, with_for_update=True)
    window = timedelta(seconds=get_settings().webhook_rotation_window_s)
    rotate_webhook_secret(session, row, window)
    session.commit()
    response.headers["Cache-Control"] = "no-store"
    return secret_view(row)


@router.get("/v1/jobs/{job_id}/deliveries", summary="A job's webhook deliveries and their attempts")
def list_deliveries(job_id: str, tenant: TenantDep, session: SessionDep) -> dict[str, Any]:
    return {"data": job_deliveries(session, tenant.id, job_id)}


@router.post("/v1/deliveries/{delivery_id}/redeliver", status_code=202, summary="Send a delivery's event again")
def redeliver_one(delivery_id: str, tenant: TenantDep, session: SessionDep) -> dict[str, Any]:
    """A new delivery of the same event (same `webhook-id`), sent now and retried on the usual schedule."""
    fresh, event = redeliver(session, tenant.id, delivery_id)
    session.commit()
    return delivery_public(fresh, event, [])

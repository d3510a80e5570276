"""Webhooks: the signing secret (read, rotate), a job's deliveries, and redelivery.

The secret appears in the replies of the two secret endpoints only (with `Cache-Control: no-store`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from services.api.deps import ReadSessionDep, SessionDep, TenantDep
from services.api.openapi import delivery_links
from services.api.schemas.errors import protected
from services.api.schemas.webhooks import DeliveryPage, DeliveryPublic, WebhookSecret
from shared.domain.tenants import rotate_webhook_secret
from shared.settings import get_settings
from shared.tables import Tenant
from shared.timeutil import as_utc, iso, utcnow
from shared.webhooks.deliveries import delivery_public, job_deliveries, redeliver, take_redelivery

router = APIRouter(tags=["webhooks"])


def secret_view(tenant: Tenant) -> dict[str, Any]:
    until = as_utc(tenant.previous_secret_until)
    previous = None
    if tenant.previous_webhook_secret and until and until > utcnow():
        previous = {"secret": tenant.previous_webhook_secret, "expires_at": iso(until)}
    return {"secret": tenant.webhook_secret, "previous": previous}


@router.get(
    "/v1/webhooks/secret",
    summary="The webhook signing secret (and the previous one during a rotation)",
    responses=protected(),
)
def read_secret(tenant: TenantDep, response: Response) -> WebhookSecret:
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecret.model_validate(secret_view(tenant))


@router.post("/v1/webhooks/secret/rotate", summary="Rotate the webhook signing secret", responses=protected())
def rotate_secret(tenant: TenantDep, session: SessionDep, response: Response) -> WebhookSecret:
    """A new secret signs from now on; the old one keeps signing too until `previous.expires_at`."""
    row = session.get_one(Tenant, tenant.id, with_for_update=True)
    window = timedelta(seconds=get_settings().webhook_rotation_window_s)
    rotate_webhook_secret(session, row, window)
    session.commit()
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecret.model_validate(secret_view(row))


@router.get(
    "/v1/jobs/{job_id}/deliveries",
    summary="A job's webhook deliveries and their attempts, oldest first",
    responses={**protected(404, 422), 200: {"description": "A page of deliveries", "links": delivery_links()}},
)
def list_deliveries(
    job_id: str,
    tenant: TenantDep,
    session: ReadSessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    data, next_cursor = job_deliveries(session, tenant.id, job_id, cursor=cursor, limit=limit)
    return DeliveryPage.model_validate({"data": data, "next_cursor": next_cursor, "has_more": next_cursor is not None})


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery's event again",
    responses=protected(404, 409, 422, 429),
)
async def redeliver_one(delivery_id: str, tenant: TenantDep) -> DeliveryPublic:
    """A new delivery of the same event (same `webhook-id`), sent now and retried on the usual schedule. At most
    `redeliver_per_minute` per tenant (429 with Retry-After past it); 409 for a URL that answered 410 Gone."""
    return DeliveryPublic.model_validate(await run_in_threadpool(_redeliver, tenant.id, delivery_id))


def _redeliver(tenant_id: str, delivery_id: str) -> dict[str, Any]:
    from sqlmodel import Session

    from shared.db import get_engine

    take_redelivery(tenant_id)
    with Session(get_engine(), expire_on_commit=False) as session:
        fresh, event = redeliver(session, tenant_id, delivery_id)
        session.commit()
        return delivery_public(fresh, event, [])

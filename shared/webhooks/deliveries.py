"""Reading and redelivering webhook deliveries (the API calls these; they raise domain errors).

A job's deliveries are listed oldest first, a page at a time. Redelivery is limited per tenant
(`redeliver_per_minute`, counted in Redis across every API replica), and a URL that answered 410 Gone stays gone:
asking for a redelivery does not lift the mark (a receiver that said "stop" is not sent to again on a client's
word; a client whose endpoint is back uses a new URL for it).
"""

from __future__ import annotations

import base64
import time
from collections import defaultdict
from typing import Any

from sqlmodel import Session, select

from shared.db.hooks import after_commit
from shared.domain import dispatch
from shared.domain.errors import Conflict, NotFound, RateLimited, ValidationFailed
from shared.domain.jobs import get_job
from shared.ids import is_id, new_id
from shared.redis_conn import get_redis
from shared.settings import get_settings
from shared.tables import Delivery, DeliveryAttempt, Event, GoneEndpoint
from shared.timeutil import iso, utcnow

WINDOW_S = 60


def attempt_public(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "attempted_at": iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response_excerpt": attempt.excerpt,
        "error": attempt.error,
    }


def delivery_public(delivery: Delivery, event: Event, attempts: list[DeliveryAttempt]) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": event.id,
        "event_type": event.type,
        "job_id": delivery.job_id,
        "batch_id": event.batch_id,
        "url": delivery.url,
        "status": delivery.status,
        "attempt_count": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "created_at": iso(delivery.created_at),
        "completed_at": iso(delivery.completed_at),
        "attempts": [attempt_public(a) for a in sorted(attempts, key=lambda a: a.id or 0)],
    }


def job_deliveries(
    session: Session, tenant_id: str, job_id: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the job's deliveries, oldest first (delivery ids sort by creation), with their attempts, and the
    cursor of the next page. NotFound for another tenant's job."""
    job = get_job(session, tenant_id, job_id)
    stmt = (
        select(Delivery, Event)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.tenant_id == tenant_id, Delivery.job_id == job.id)
    )
    if cursor:
        stmt = stmt.where(Delivery.id > _decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(Delivery.id).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    attempts = _attempts(session, [d.id for d, _ in rows])
    next_cursor = _encode_cursor(rows[-1][0].id) if more and rows else None
    return [delivery_public(d, e, attempts[d.id]) for d, e in rows], next_cursor


def _encode_cursor(delivery_id: str) -> str:
    return base64.urlsafe_b64encode(delivery_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    if not is_id(raw, "dlv"):
        raise ValidationFailed("cursor is not one this API returned", field="cursor")
    return raw


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> tuple[Delivery, Event]:
    if not is_id(delivery_id, "dlv"):
        raise NotFound(f"no delivery {delivery_id[:60]!r}")
    found = session.exec(
        select(Delivery, Event)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id == delivery_id, Delivery.tenant_id == tenant_id)
    ).first()
    if found is None:  # another tenant's delivery is "not found" too
        raise NotFound(f"no delivery {delivery_id!r}")
    return found[0], found[1]


def take_redelivery(tenant_id: str, now: float | None = None) -> None:
    """Count one redelivery against the tenant's `redeliver_per_minute`; RateLimited (429) past it."""
    limit = get_settings().redeliver_per_minute
    now = time.time() if now is None else now
    window = int(now // WINDOW_S)
    key = f"reelmill:redeliver:{tenant_id}:{window}"
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, WINDOW_S * 2)
    used = int(pipe.execute()[0])
    if used > limit:
        retry_after = max(1, int((window + 1) * WINDOW_S - now) + 1)
        raise RateLimited(
            f"at most {limit} redeliveries a minute; try again in {retry_after} s", retry_after=retry_after
        )


def redeliver(session: Session, tenant_id: str, delivery_id: str) -> tuple[Delivery, Event]:
    """A new delivery of the same event to the same URL: the same message, so the same `webhook-id`.

    A URL that answered 410 Gone is not sent to again (409): the receiver asked to be left alone."""
    original, event = get_delivery(session, tenant_id, delivery_id)
    gone = session.exec(
        select(GoneEndpoint).where(GoneEndpoint.tenant_id == tenant_id, GoneEndpoint.url == original.url)
    ).first()
    if gone is not None:
        raise Conflict(
            f"{original.url} answered 410 Gone at {iso(gone.gone_at)}, so nothing more is sent to it; "
            "give the endpoint a new URL to receive webhooks again",
            field="url",
        )
    fresh = Delivery(
        id=new_id("dlv"),
        event_id=event.id,
        tenant_id=tenant_id,
        job_id=original.job_id,
        url=original.url,
        next_attempt_at=utcnow(),
    )
    session.add(fresh)
    fresh_id = fresh.id

    def send() -> None:
        d = dispatch.current()
        if d is not None:
            d.delivery(fresh_id, 0.0)

    after_commit(session, send)
    return fresh, event


def _attempts(session: Session, delivery_ids: list[str]) -> dict[str, list[DeliveryAttempt]]:
    found: dict[str, list[DeliveryAttempt]] = defaultdict(list)
    if delivery_ids:
        stmt = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids))
        for attempt in session.exec(stmt.order_by(DeliveryAttempt.id)):
            found[attempt.delivery_id].append(attempt)
    return found

"""Reading and redelivering webhook deliveries (the API calls these; they raise domain errors)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlmodel import Session, delete, select

from shared.db.hooks import after_commit
from shared.domain import dispatch
from shared.domain.errors import NotFound
from shared.domain.jobs import get_job
from shared.ids import new_id
from shared.tables import Delivery, DeliveryAttempt, Event, GoneEndpoint
from shared.timeutil import iso, utcnow


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


def job_deliveries(session: Session, tenant_id: str, job_id: str) -> list[dict[str, Any]]:
    """Every delivery of the job's events, oldest first, with its attempts. NotFound for another tenant's job."""
    job = get_job(session, tenant_id, job_id)
    rows = session.exec(
        select(Delivery, Event)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.tenant_id == tenant_id, Delivery.job_id == job.id)
        .order_by(Event.seq, Delivery.created_at, Delivery.id)
    ).all()
    attempts = _attempts(session, [d.id for d, _ in rows])
    return [delivery_public(d, e, attempts[d.id]) for d, e in rows]


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> tuple[Delivery, Event]:
    found = session.exec(
        select(Delivery, Event)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id == delivery_id, Delivery.tenant_id == tenant_id)
    ).first()
    if found is None:  # another tenant's delivery is "not found" too
        raise NotFound(f"no delivery {delivery_id!r}")
    return found[0], found[1]


def delivery_view(session: Session, tenant_id: str, delivery_id: str) -> dict[str, Any]:
    delivery, event = get_delivery(session, tenant_id, delivery_id)
    return delivery_public(delivery, event, _attempts(session, [delivery.id])[delivery.id])


def redeliver(session: Session, tenant_id: str, delivery_id: str) -> tuple[Delivery, Event]:
    """A new delivery of the same event to the same URL: the same message, so the same `webhook-id`.

    Asking for it is also how a client says a URL that answered 410 Gone is back: the mark is lifted."""
    original, event = get_delivery(session, tenant_id, delivery_id)
    session.exec(delete(GoneEndpoint).where(GoneEndpoint.tenant_id == tenant_id, GoneEndpoint.url == original.url))
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

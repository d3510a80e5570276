"""The outbox writer: `emit` adds an event row (and its webhook deliveries) to the caller's transaction.

Event types
- webhook events: job.started, job.progress, job.succeeded, job.failed, job.canceled, batch.completed, and
  job.artifact.stored / job.artifact.failed when a job's output has been copied to the artifact store, or could
  not be (filter `artifact`; shared/artifacts/);
- live-only events (the `GET /v1/jobs/{id}/events` stream): job.stage, job.message, job.still_working,
  job.revision.
A job's `webhook_events` filter (start / progress / completed) picks the webhook events it wants.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from shared.db.hooks import after_commit
from shared.domain import dispatch
from shared.ids import new_id
from shared.tables import Delivery, Event, GoneEndpoint
from shared.timeutil import utcnow

TERMINAL_EVENTS = ("job.succeeded", "job.failed", "job.canceled")
ARTIFACT_EVENTS = ("job.artifact.stored", "job.artifact.failed")
FILTER_EVENTS: dict[str, tuple[str, ...]] = {
    "start": ("job.started",),
    "progress": ("job.progress",),
    "completed": TERMINAL_EVENTS,
    "artifact": ARTIFACT_EVENTS,
}
WEBHOOK_EVENTS = frozenset({"job.started", "job.progress", *TERMINAL_EVENTS, *ARTIFACT_EVENTS, "batch.completed"})
DEFAULT_FILTER = ("start", "completed")


def wanted(event_type: str, events_filter: list[str] | tuple[str, ...] | None) -> bool:
    if event_type == "batch.completed":
        return True
    chosen = events_filter if events_filter else DEFAULT_FILTER
    return any(event_type in FILTER_EVENTS.get(name, ()) for name in chosen)


def emit(
    session: Session,
    *,
    tenant_id: str,
    type: str,
    data: dict[str, Any],
    job_id: str | None = None,
    batch_id: str | None = None,
    webhook_url: str | None = None,
    webhook_filter: list[str] | None = None,
) -> Event:
    """Write one event, and a delivery for it when a webhook wants it. Nothing is sent before commit."""
    event = Event(id=new_id("msg"), tenant_id=tenant_id, job_id=job_id, batch_id=batch_id, type=type, data=data)
    session.add(event)
    if webhook_url and type in WEBHOOK_EVENTS and wanted(type, webhook_filter):
        _add_delivery(session, event, webhook_url)
    return event


def _add_delivery(session: Session, event: Event, url: str) -> None:
    gone = session.exec(
        select(GoneEndpoint).where(GoneEndpoint.tenant_id == event.tenant_id, GoneEndpoint.url == url)
    ).first()
    if gone is not None:
        return
    delivery = Delivery(
        id=new_id("dlv"),
        event_id=event.id,
        tenant_id=event.tenant_id,
        job_id=event.job_id,
        url=url,
        next_attempt_at=utcnow(),
    )
    session.add(delivery)
    dispatcher = dispatch.current()  # none installed (a bare script): the delivery waits in its table for the sweeper
    if dispatcher is not None:
        after_commit(session, lambda: dispatcher.delivery(delivery.id))

"""Webhook delivery: one attempt per task run, its outcome written to the delivery row, the next one scheduled.

A delivery row is the work item (`deliveries`, written by `shared.domain.events.emit`). A task run:
1. claims it: one conditional UPDATE moves `next_attempt_at` forward by the attempt's longest possible duration,
   so a second message for the same delivery (a sweeper resend, a duplicate) finds nothing due and drops;
2. signs the event body with the tenant's current secrets and sends it once (shared/webhooks/sender.py);
3. writes a `DeliveryAttempt` and either succeeds, schedules the next attempt (`next_attempt_at` plus a task with a
   countdown), fails when the schedule is spent, or, on 410 Gone, marks the URL gone for the tenant and stops
   every pending delivery to it.
A worker killed mid-attempt leaves the row pending; once its hold and `queue_grace_s` pass, the sweeper resends it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shared import metrics
from shared.db import session_scope
from shared.db.hooks import after_commit
from shared.domain import dispatch
from shared.domain.tenants import webhook_secrets
from shared.logs import job_context
from shared.settings import get_settings
from shared.tables import Delivery, DeliveryAttempt, DeliveryStatus, Event, GoneEndpoint, Tenant
from shared.timeutil import utcnow
from shared.webhooks.payload import event_body
from shared.webhooks.schedule import next_delay
from shared.webhooks.sender import AttemptResult, send_webhook
from shared.webhooks.signing import webhook_headers

log = logging.getLogger(__name__)
PENDING = DeliveryStatus.pending.value
HOLD_MARGIN_S = 30.0  # beyond the HTTP timeout: signing, the guard's DNS lookup, writing the outcome
EARLY_SLACK_S = 1.0  # a task may arrive this much before `next_attempt_at` (clock skew between hosts)
SWEEP_BATCH = 1000


@dataclass(frozen=True)
class Claimed:
    delivery_id: str
    tenant_id: str
    job_id: str | None
    url: str
    msg_id: str
    body: bytes
    secrets: list[str]
    attempt: int
    claimed_at: datetime


def deliver(delivery_id: str) -> str:
    """Make one attempt at ``delivery_id`` if it is due; returns what happened (for logs, metrics and tests)."""
    claimed = claim(delivery_id)
    if claimed is None:
        return "skipped"
    with job_context(claimed.job_id):
        result = attempt(claimed)
        outcome = record(claimed, result)
        log.info(
            "webhook %s (%s) attempt %d to %s: %s, %s in %d ms",
            claimed.delivery_id,
            claimed.msg_id,
            claimed.attempt,
            _host(claimed.url),
            result.status_code if result.status_code is not None else (result.error or "no answer")[:120],
            outcome,
            result.latency_ms,
        )
    metrics.delivery_outcome(outcome)
    return outcome


def attempt(claimed: Claimed) -> AttemptResult:
    """Sign and send. Whatever goes wrong becomes a failed attempt, so the schedule still ends the delivery."""
    try:
        headers = webhook_headers(claimed.secrets, claimed.msg_id, claimed.body)
        return send_webhook(claimed.url, claimed.body, headers)
    except Exception as exc:
        log.exception("webhook %s: the attempt could not be made", claimed.delivery_id)
        return AttemptResult(None, 0, error=f"internal error before sending ({type(exc).__name__})")


def claim(delivery_id: str) -> Claimed | None:
    """Take the delivery for one attempt, or None when it is not pending, not due yet, or held by another run."""
    now = utcnow()
    with session_scope() as session:
        if not _take(session, delivery_id, now):
            return None
        row = session.exec(select(Delivery).where(Delivery.id == delivery_id)).one()
        if is_gone(session, row.tenant_id, row.url):
            _finish(row, DeliveryStatus.gone, now)
            session.add(row)
            return None
        event = session.exec(select(Event).where(Event.id == row.event_id)).one()
        tenant = session.exec(select(Tenant).where(Tenant.id == row.tenant_id)).one()
        return Claimed(
            delivery_id=row.id,
            tenant_id=row.tenant_id,
            job_id=row.job_id,
            url=row.url,
            msg_id=event.id,
            body=event_body(event),
            secrets=webhook_secrets(tenant),
            attempt=row.attempts,
            claimed_at=now,
        )


def _take(session: Session, delivery_id: str, now: datetime) -> bool:
    """The claim: one conditional UPDATE, so two runs can never both take the same attempt."""
    hold = timedelta(seconds=get_settings().webhook_timeout_s + HOLD_MARGIN_S)
    due_by = now + timedelta(seconds=EARLY_SLACK_S)
    taken = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == PENDING,
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= due_by),
        )
        .values(next_attempt_at=now + hold, attempts=Delivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def record(claimed: Claimed, result: AttemptResult) -> str:
    """Write the attempt and the delivery's next state in one transaction; schedule the next attempt after it."""
    now = utcnow()
    with session_scope() as session:
        row = session.exec(select(Delivery).where(Delivery.id == claimed.delivery_id).with_for_update()).one()
        session.add(
            DeliveryAttempt(
                delivery_id=row.id,
                attempted_at=claimed.claimed_at,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                excerpt=result.excerpt,
                error=result.error,
            )
        )
        row.last_status_code = result.status_code
        outcome = _next_state(session, row, result, now)
        session.add(row)
    return outcome


def _next_state(session: Session, row: Delivery, result: AttemptResult, now: datetime) -> str:
    if result.ok:
        _finish(row, DeliveryStatus.succeeded, now)
        return "succeeded"
    if result.gone:
        _finish(row, DeliveryStatus.gone, now)
        mark_gone(session, row.tenant_id, row.url)
        return "gone"
    if row.status != PENDING:  # decided meanwhile (the URL went gone through another delivery)
        return str(row.status)
    delay = next_delay(row.attempts, result.retry_after, scale=get_settings().webhook_schedule_scale, now=now)
    if delay is None:
        _finish(row, DeliveryStatus.failed, now)
        return "failed"
    row.next_attempt_at = now + timedelta(seconds=delay)
    _enqueue_after_commit(session, row.id, delay)
    return "refused" if result.refused else "retry"


def _finish(row: Delivery, status: DeliveryStatus, now: datetime) -> None:
    row.status = status.value
    row.completed_at = now
    row.next_attempt_at = None


def _enqueue_after_commit(session: Session, delivery_id: str, countdown: float) -> None:
    def send() -> None:
        d = dispatch.current()
        if d is not None:
            d.delivery(delivery_id, countdown)

    after_commit(session, send)


# ---- 410 Gone --------------------------------------------------------------------------------------------


def is_gone(session: Session, tenant_id: str, url: str) -> bool:
    found = session.exec(
        select(GoneEndpoint).where(GoneEndpoint.tenant_id == tenant_id, GoneEndpoint.url == url)
    ).first()
    return found is not None


def mark_gone(session: Session, tenant_id: str, url: str) -> int:
    """Remember that ``url`` answered 410 for this tenant and stop its pending deliveries; returns how many."""
    if not is_gone(session, tenant_id, url):
        try:
            with session.begin_nested():
                session.add(GoneEndpoint(tenant_id=tenant_id, url=url))
        except IntegrityError:
            pass  # another worker marked it at the same moment
    now = utcnow()
    stopped = session.execute(
        update(Delivery)
        .where(Delivery.tenant_id == tenant_id, Delivery.url == url, Delivery.status == PENDING)
        .values(status=DeliveryStatus.gone.value, completed_at=now, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(stopped.rowcount or 0)


# ---- the sweeper's check ---------------------------------------------------------------------------------


def resend_lost_deliveries() -> int:
    """Send again the pending deliveries whose attempt was due `queue_grace_s` ago and did not happen."""
    now = utcnow()
    cutoff = now - timedelta(seconds=get_settings().queue_grace_s)
    with session_scope() as session:
        rows = session.exec(
            select(Delivery)
            .where(
                Delivery.status == PENDING,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at < cutoff),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        ids = [row.id for row in rows]
        for row in rows:
            row.next_attempt_at = now  # due now, and not "lost" again before another grace period passes
            session.add(row)
    d = dispatch.current()
    if d is not None:
        for delivery_id in ids:
            d.delivery(delivery_id, 0.0)
    if ids:
        log.info("sweeper re-sent %d webhook deliveries that were due and not attempted", len(ids))
    return len(ids)


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"

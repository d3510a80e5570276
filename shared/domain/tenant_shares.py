"""Tenants' fair shares of NemoVideo's capacity, as operators set and see them (`reelmill tenants`, /metrics).

A tenant's `weight` (an integer >= 1, default 1) and its `max_in_flight` (a cap on its jobs started and not ended;
None: no cap of its own) live on the tenant row; the scheduler (services/worker/scheduler.py) reads them on every
round, so a change applies within a second, without a restart.

"Waiting" means what the scheduler may start: a queued job not yet started whose batch (if any) is neither paused
nor canceled. "In flight" means started and not ended (throttled jobs included), as the scheduler counts it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from shared.domain.errors import NotFound, ValidationFailed
from shared.pace.fair import check_weight
from shared.tables import TERMINAL_JOB_STATUSES, Batch, BatchStatus, Job, JobStatus, Stage, Tenant

MAX_WEIGHT = 10_000  # beyond this one tenant's share rounds every other tenant's to nothing anyway
MAX_CAP = 1_000_000
NO_CAP = "none"  # `reelmill tenants set-max-in-flight TENANT none` removes the cap


def waiting_to_start():  # type: ignore[no-untyped-def]
    """Jobs the scheduler may start (the same test as its `_eligible`); needs Batch outer-joined on the job."""
    batch_ok = or_(Job.batch_id.is_(None), Batch.status.in_([BatchStatus.queued, BatchStatus.running]))
    return (Job.stage == Stage.queued) & (Job.status == JobStatus.queued) & batch_ok


def in_flight():  # type: ignore[no-untyped-def]
    return Job.stage.not_in([Stage.queued, Stage.done]) & Job.status.not_in(list(TERMINAL_JOB_STATUSES))


def parse_weight(text: str | int, tenant: str = "") -> int:
    """WEIGHT as typed: an integer from 1 to MAX_WEIGHT, else a ValidationFailed naming it."""
    try:
        weight = check_weight(_integer(text), tenant)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="weight") from None
    if weight > MAX_WEIGHT:
        raise ValidationFailed(f"weight must be at most {MAX_WEIGHT}, got {weight}", field="weight")
    return weight


def parse_max_in_flight(text: str | int | None) -> int | None:
    """MAX_IN_FLIGHT as typed: an integer from 1 to MAX_CAP, or `none` (None: the cap is removed). Zero is refused:
    it would hold every job of the tenant forever, which is what pausing its batches or revoking its keys is for."""
    if text is None or (isinstance(text, str) and text.strip().lower() == NO_CAP):
        return None
    value = _integer(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAP:
        raise ValidationFailed(
            f"max in flight must be an integer from 1 to {MAX_CAP}, or {NO_CAP!r} to remove the cap; got {text!r}",
            field="max_in_flight",
        )
    return value


def _integer(text: str | int) -> int | str:
    if isinstance(text, int):
        return text
    try:
        return int(text.strip())
    except ValueError:
        return text


def find_tenant(session: Session, name_or_id: str) -> Tenant:
    tenant = session.exec(select(Tenant).where(Tenant.name == name_or_id)).first() or session.get(Tenant, name_or_id)
    if tenant is None:
        raise NotFound(f"no tenant {name_or_id!r} (`reelmill tenants list` shows them)")
    return tenant


def set_weight(session: Session, name_or_id: str, weight: str | int) -> Tenant:
    tenant = find_tenant(session, name_or_id)
    tenant.weight = parse_weight(weight, tenant.name)
    session.add(tenant)
    return tenant


def set_max_in_flight(session: Session, name_or_id: str, cap: str | int | None) -> Tenant:
    tenant = find_tenant(session, name_or_id)
    tenant.max_in_flight = parse_max_in_flight(cap)
    session.add(tenant)
    return tenant


@dataclass(frozen=True)
class TenantShare:
    tenant: str  # its name
    id: str
    weight: int
    max_in_flight: int | None
    queued: int  # waiting to start
    in_flight: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_shares(session: Session) -> list[TenantShare]:
    """Every tenant with its weight, cap, and jobs waiting and in flight (three statements, whatever the count)."""
    waiting = dict(
        session.exec(
            select(Job.tenant_id, func.count())
            .select_from(Job)
            .outerjoin(Batch, Batch.id == Job.batch_id)
            .where(waiting_to_start())
            .group_by(Job.tenant_id)
        ).all()
    )
    running = dict(session.exec(select(Job.tenant_id, func.count()).where(in_flight()).group_by(Job.tenant_id)).all())
    return [
        TenantShare(t.name, t.id, t.weight, t.max_in_flight, waiting.get(t.id, 0), running.get(t.id, 0))
        for t in session.exec(select(Tenant).order_by(Tenant.name))
    ]


def waiting_by_tenant(session: Session) -> dict[str, tuple[int, datetime]]:
    """Tenant name -> (jobs waiting to start, the oldest one's creation), only tenants with jobs waiting (what
    /metrics exports: its cardinality stays that of the busy tenants)."""
    rows = session.exec(
        select(Tenant.name, func.count(), func.min(Job.created_at))
        .select_from(Job)
        .join(Tenant, Tenant.id == Job.tenant_id)
        .outerjoin(Batch, Batch.id == Job.batch_id)
        .where(waiting_to_start())
        .group_by(Tenant.name)
    ).all()
    return {name: (int(count), oldest) for name, count, oldest in rows}

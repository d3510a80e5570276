"""The scheduler: the jobs that wait in the database, and when each goes on.

    parked (`wake_at`)   a retry after a delay, a 429's pause: sent to its queue when due (render polls are the
                         poller's: services/worker/polls.py)
    deadlines            a job past its `Cancel-After` is canceled (`deadline`); one that never started costs nothing
    throttled            a job waiting for a stream or render slot: when the credential's pace has room, the slot is
                         taken on its behalf and the job sent on, tenants served by deficit round robin
    queued               a job waiting to start: admitted while the credential's jobs in flight stay under
                         `REELMILL_UPSTREAM_MAX_IN_FLIGHT`; every tenant may always fill its weighted share of that
                         window (so a newcomer starts at once, even behind another tenant's 2,000-row batch), and
                         room beyond the shares goes by deficit round robin; within a tenant, higher priority
                         first, then batches and single jobs in turn (a batch never beyond its `max_in_flight`),
                         then the oldest

It runs on the streams worker's event loop a few times a second. Sending parked jobs takes `FOR UPDATE SKIP
LOCKED` claims, safe on every replica; deadlines, grants and admission run on one replica at a time (a lease in
Redis). The sweeper (beat) sends whatever stays due past `queue_grace_s`, so nothing waits forever.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlmodel import Session

from shared.db import session_scope
from shared.domain import dispatch
from shared.domain.priority import DEADLINE_MESSAGE
from shared.domain.tenant_shares import waiting_to_start
from shared.domain.transitions import end_job
from shared.nemo.upstream import CREDENTIAL, get_pace
from shared.pace.fair import Demand, pick
from shared.pace.fair_store import DrrStore
from shared.pace.limiter import Limiter
from shared.redis_conn import get_redis
from shared.settings import get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Batch, BatchStatus, Job, JobStatus, JobTurn, Stage, Tenant
from shared.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)
BATCH = 500
LEADER_KEY = "reelmill:scheduler:leader"
LEADER_TTL_MS = 5000
# Set by a replica for the length of its leader part of a round (from before it checks the lease): whoever takes
# the lease over (a new leader, an operator, a test) can wait until no round that began under the old one runs.
ROUND_KEY_PREFIX = "reelmill:scheduler:round:"
OPEN = [s for s in JobStatus if s not in TERMINAL_JOB_STATUSES]


# The line marks (shared/pace/keys.py `line:<res>`) outlive a few rounds, not a scheduler that stopped.
LINE_TTL_S = 5.0  # a round can take seconds on a loaded host; as long as the leader lease
_lines: set[str] = set()  # resources this process last marked as having a line
DEADLINES_EVERY_S = 1.0
_deadlines_checked = 0.0


def tick(owner: str) -> None:
    """One round: parked jobs on every replica; the rest on the leader, each part only when something waits for
    it (one cheap query says what), so an idle round costs two statements and a few Redis calls."""
    while dispatch_due() >= BATCH:
        pass
    with _round(owner):
        if lead(owner):
            _lead_round()


def _lead_round() -> None:
    global _deadlines_checked
    if time.monotonic() - _deadlines_checked >= DEADLINES_EVERY_S:
        _deadlines_checked = time.monotonic()
        expire_deadlines()
    queued, for_streams, for_renders = waiting()
    lines = (("streams", Stage.message, for_streams), ("renders", Stage.render_submit, for_renders))
    for resource, stage, asked in lines:
        if asked:
            grant(resource, stage)
        elif resource in _lines:
            mark_line(resource, False)
    if queued:
        admit()


@contextmanager
def _round(owner: str) -> Iterator[None]:
    """Mark this replica's round as running (best effort: without Redis there is no lease to lead by either)."""
    key = ROUND_KEY_PREFIX + owner
    with suppress(Exception):
        get_redis().set(key, "1", px=LEADER_TTL_MS)
    try:
        yield
    finally:
        with suppress(Exception):
            get_redis().delete(key)


def waiting() -> tuple[bool, bool, bool]:
    """Whether jobs wait to start, for a stream slot, for a render slot (each an EXISTS: stops at the first)."""

    def some(condition):  # type: ignore[no-untyped-def]
        return select(Job.id).where(condition).limit(1).exists()

    with session_scope() as session:
        row = session.execute(
            select(some(_eligible_plain()), some(_waiting_for(Stage.message)), some(_waiting_for(Stage.render_submit)))
        ).one()
    return bool(row[0]), bool(row[1]), bool(row[2])


def lead(owner: str) -> bool:
    """Hold (or take) the scheduler's lease in Redis; False while another replica holds it or Redis is away."""
    try:
        client = get_redis()
        if client.set(LEADER_KEY, owner, nx=True, px=LEADER_TTL_MS):
            return True
        if client.get(LEADER_KEY) == owner.encode():
            client.pexpire(LEADER_KEY, LEADER_TTL_MS)
            return True
    except Exception as exc:
        log.warning("scheduler lease unavailable: %s", type(exc).__name__)
    return False


# ---- parked jobs --------------------------------------------------------------------------------------------


def dispatch_due(limit: int = BATCH) -> int:
    """Send every parked job whose time has come (but render polls) to its queue; how many."""
    now = utcnow()
    due = (
        select(Job.id)
        .where(
            Job.wake_at <= now,
            Job.stage != Stage.render_poll,
            Job.lease_owner.is_(None),
            Job.status.in_(OPEN),
        )
        .order_by(Job.wake_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    grace = timedelta(seconds=get_settings().queue_grace_s)
    with session_scope() as session:
        rows = session.execute(
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()))
            .values(wake_at=None, lease_until=now + grace)
            .returning(Job.id, Job.step_seq, Job.stage, Job.resume_stage)
            .execution_options(synchronize_session=False)
        ).all()
    _send(
        (job_id, seq, resume if stage == Stage.throttled and resume else stage) for job_id, seq, stage, resume in rows
    )
    return len(rows)


def _send(jobs: Iterable[tuple[str, int, Stage]]) -> None:
    sender = dispatch.current()
    if sender is not None:
        for job_id, seq, stage in jobs:
            sender.job(job_id, seq, Stage(stage).value)


# ---- deadlines -----------------------------------------------------------------------------------------------


def expire_deadlines(limit: int = BATCH) -> int:
    """Cancel every job past its deadline: at once when no worker holds it, else through its worker (which sees
    the flag within seconds and stops, its upstream render canceled)."""
    now = utcnow()
    with session_scope() as session:
        jobs = session.execute(
            select(Job)
            .where(Job.deadline_at <= now, Job.status.in_(OPEN), Job.cancel_requested.is_(False))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
        count = 0
        for job in jobs:
            count += 1
            job.cancel_requested = True
            session.add(job)
            lease_until = as_utc(job.lease_until)
            held = job.lease_owner is not None and lease_until is not None and lease_until > now
            if not held:
                end_job(session, job, JobStatus.canceled, "deadline", DEADLINE_MESSAGE, render_id=_render(session, job))
    if count:
        log.info("%d jobs passed their deadline", count)
    return count


def _render(session: Session, job: Job) -> str | None:
    turn = (
        session.execute(select(JobTurn).where(JobTurn.job_id == job.id, JobTurn.seq == job.turn_index))
        .scalars()
        .first()
    )
    if turn is None or not turn.render_submitted or turn.output is not None:
        return None
    return turn.render_id


# ---- capacity grants -----------------------------------------------------------------------------------------


def grant(resource: str, stage: Stage) -> int:
    """Give free ``resource`` slots to throttled jobs waiting to run ``stage``, tenants by deficit round robin.
    While some still wait, the line is marked: a job reaching ``stage`` then joins it instead of taking a slot
    that frees up before the next round (which would let a tenant with many jobs overtake the round robin).
    Called when the round's EXISTS saw a job waiting; while every slot is taken (most rounds of a busy credential)
    the line is marked without counting who waits."""
    pace = get_pace()
    free = pace.room(resource)
    if free <= 0:
        mark_line(resource, True)
        return 0
    with session_scope() as session:
        demands = _throttled_demands(session, stage)
    waiting = sum(d.backlog for d in demands)
    granted = _grant_free(pace, resource, stage, demands, free) if waiting else 0
    mark_line(resource, granted < waiting)
    return granted


def mark_line(resource: str, waiting: bool) -> None:
    get_pace().mark_line(resource, waiting, LINE_TTL_S)
    (_lines.add if waiting else _lines.discard)(resource)


def _grant_free(pace: Limiter, resource: str, stage: Stage, demands: list[Demand], free: int) -> int:
    tenants = _drr(f"{resource}:{CREDENTIAL}", demands, free)
    granted = 0
    settings = get_settings()
    for tenant, count in Counter(tenants).items():
        for job_id, seq in _throttled_jobs(tenant, stage, count):
            if not pace.acquire(resource, job_id, settings.queue_grace_s + settings.lease_s):
                return granted
            if _take_throttled(job_id, seq):
                _send([(job_id, seq, stage)])
                granted += 1
            else:
                pace.release(resource, job_id)
    return granted


def _throttled_demands(session: Session, stage: Stage) -> list[Demand]:
    rows = session.execute(select(Job.tenant_id, func.count()).where(_waiting_for(stage)).group_by(Job.tenant_id)).all()
    weights = _weights(session, [tenant for tenant, _ in rows])
    return [Demand(tenant, n, n, weights.get(tenant, (1, None))[0]) for tenant, n in rows]


def _waiting_for(stage: Stage):  # type: ignore[no-untyped-def]
    return (
        (Job.stage == Stage.throttled)
        & (Job.resume_stage == stage)
        & Job.lease_owner.is_(None)
        & Job.wake_at.is_(None)
        & Job.status.in_(OPEN)
    )


def _throttled_jobs(tenant: str, stage: Stage, count: int) -> list[tuple[str, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(Job.id, Job.step_seq)
            .where(Job.tenant_id == tenant, _waiting_for(stage))
            .order_by(Job.priority, Job.id)
            .limit(count)
        ).all()
    return [(job_id, seq) for job_id, seq in rows]


def _take_throttled(job_id: str, seq: int) -> bool:
    """Mark a throttled job sent (the sweeper resends it if the message is lost); False if it moved meanwhile."""
    until = utcnow() + timedelta(seconds=get_settings().queue_grace_s)
    with session_scope() as session:
        moved = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.step_seq == seq, Job.stage == Stage.throttled, Job.lease_owner.is_(None))
            .values(lease_until=until)
        ).rowcount
    return moved == 1


def _drr(scope: str, demands: list[Demand], free: int) -> list[str]:
    store = DrrStore(get_redis(), scope)
    try:
        state, version = store.load()
    except Exception:  # Redis away: fair within this round only
        state, version = None, -1
    order, state = pick(demands, free, state)
    if version >= 0:
        try:
            store.save(state, version)
        except Exception as exc:
            log.debug("fair-share state not saved: %s", type(exc).__name__)
    return order


def _weights(session: Session, tenants: list[str]) -> dict[str, tuple[int, int | None]]:
    """Each tenant's (weight, max in flight), read fresh every round: `reelmill tenants set-weight` and
    `set-max-in-flight` apply at the next round, without a restart."""
    if not tenants:
        return {}
    rows = session.execute(select(Tenant.id, Tenant.weight, Tenant.max_in_flight).where(Tenant.id.in_(tenants)))
    return {tenant: (max(1, weight or 1), cap) for tenant, weight, cap in rows}


# ---- admission -----------------------------------------------------------------------------------------------


def window() -> int:
    settings = get_settings()
    return settings.upstream_max_in_flight or 2 * settings.upstream_max_streams + settings.upstream_max_renders


def admit() -> int:
    """Start waiting jobs within the window, fairly (see the module's docstring)."""
    with session_scope() as session:
        in_flight = dict(session.execute(_in_flight_by_tenant()).all())
        waiting = dict(session.execute(_waiting_by_tenant()).all())
        limits = _weights(session, list(set(in_flight) | set(waiting)))
    if not waiting:
        return 0
    plan = _admission_plan(window(), in_flight, waiting, limits)
    admitted = 0
    for tenant, count in plan.items():
        admitted += _start(tenant, count)
    return admitted


def _in_flight_by_tenant():  # type: ignore[no-untyped-def]
    started = Job.stage.not_in([Stage.queued, Stage.done]) & Job.status.in_(OPEN)
    return select(Job.tenant_id, func.count()).where(started).group_by(Job.tenant_id)


def _eligible():  # type: ignore[no-untyped-def]
    """Jobs waiting to start whose batch (if any) is neither paused nor canceled (shared with `queue_position`,
    `reelmill tenants list` and /metrics, so they count what the scheduler starts)."""
    return waiting_to_start()


def _waiting_by_tenant():  # type: ignore[no-untyped-def]
    return (
        select(Job.tenant_id, func.count())
        .select_from(Job)
        .outerjoin(Batch, Batch.id == Job.batch_id)
        .where(_eligible())
        .group_by(Job.tenant_id)
    )


def _admission_plan(
    size: int,
    in_flight: dict[str, int],
    waiting: dict[str, int],
    limits: dict[str, tuple[int, int | None]],
) -> dict[str, int]:
    """How many jobs each tenant starts now: up to its weighted share of the window at once, and the window's
    remaining room by deficit round robin."""
    active = set(in_flight) | set(waiting)
    total_weight = sum(limits.get(t, (1, None))[0] for t in active) or 1
    plan: Counter[str] = Counter()
    room: dict[str, int] = {}
    for tenant in waiting:
        weight, cap = limits.get(tenant, (1, None))
        own = (cap if cap is not None else math.inf) - in_flight.get(tenant, 0)
        share = math.ceil(size * weight / total_weight) - in_flight.get(tenant, 0)
        plan[tenant] = int(max(0, min(waiting[tenant], share, own)))
        room[tenant] = int(max(0, min(waiting[tenant] - plan[tenant], own - plan[tenant], 10**9)))
    free = size - sum(in_flight.values()) - sum(plan.values())
    demands = [Demand(t, room[t], room[t], limits.get(t, (1, None))[0]) for t in waiting if room[t] > 0]
    if free > 0 and demands:
        plan.update(_drr(f"admit:{CREDENTIAL}", demands, free))
    return {tenant: n for tenant, n in plan.items() if n > 0}


def _start(tenant: str, count: int) -> int:
    """Admit up to ``count`` of ``tenant``'s waiting jobs: highest priority first, batches and single jobs taking
    turns, each batch within its `max_in_flight`, oldest first."""
    with session_scope() as session:
        picked = _pick_jobs(session, tenant, count)
        if not picked:
            return 0
        grace = utcnow() + timedelta(seconds=get_settings().queue_grace_s)
        rows = session.execute(
            update(Job)
            .where(Job.id.in_(picked), Job.stage == Stage.queued, Job.status == JobStatus.queued)
            .values(stage=Stage.credential, lease_until=grace, updated_at=utcnow())
            .returning(Job.id, Job.step_seq, Job.batch_id)
            .execution_options(synchronize_session=False)
        ).all()
        batch_ids = {batch_id for _, _, batch_id in rows if batch_id}
        if batch_ids:
            session.execute(
                update(Batch)
                .where(Batch.id.in_(batch_ids), Batch.status == BatchStatus.queued)
                .values(status=BatchStatus.running)
            )
    _send((job_id, seq, Stage.credential) for job_id, seq, _ in rows)
    return len(rows)


def _pick_jobs(session: Session, tenant: str, count: int) -> list[str]:
    flows = session.execute(
        select(Job.batch_id, func.min(Job.priority), func.min(Job.id), func.count())
        .select_from(Job)
        .outerjoin(Batch, Batch.id == Job.batch_id)
        .where(Job.tenant_id == tenant, _eligible())
        .group_by(Job.batch_id)
    ).all()
    room = _batch_room(session, [batch_id for batch_id, *_ in flows if batch_id])
    shares = _share_out(count, [(b, prio, head, min(n, room.get(b, n) if b else n)) for b, prio, head, n in flows])
    picked: list[str] = []
    for batch_id, n in shares.items():
        where = Job.batch_id == batch_id if batch_id else Job.batch_id.is_(None)
        order = (Job.priority, Job.batch_line, Job.id) if batch_id else (Job.priority, Job.id)
        ids = session.execute(
            select(Job.id).where(Job.tenant_id == tenant, where, _eligible_plain()).order_by(*order).limit(n)
        ).scalars()
        picked.extend(ids)
    return picked


def _eligible_plain():  # type: ignore[no-untyped-def]
    return (Job.stage == Stage.queued) & (Job.status == JobStatus.queued)


def _batch_room(session: Session, batch_ids: list[str]) -> dict[str, int]:
    if not batch_ids:
        return {}
    caps = dict(session.execute(select(Batch.id, Batch.max_in_flight).where(Batch.id.in_(batch_ids))).all())
    started = Job.stage.not_in([Stage.queued, Stage.done]) & Job.status.in_(OPEN)
    busy = dict(
        session.execute(
            select(Job.batch_id, func.count()).where(Job.batch_id.in_(batch_ids), started).group_by(Job.batch_id)
        ).all()
    )
    return {b: max(0, caps[b] - busy.get(b, 0)) for b in batch_ids}


def _share_out(count: int, flows: list[tuple[str | None, int, str, int]]) -> dict[str | None, int]:
    """``count`` starts over flows (a batch, or the tenant's single jobs): by priority level, flows of a level
    taking turns (the oldest head first), each up to what it may start."""
    shares: Counter[str | None] = Counter()
    for level in sorted({prio for _, prio, _, _ in flows}):
        ring = sorted((f for f in flows if f[1] == level and f[3] > 0), key=lambda f: f[2])
        while count > 0 and ring:
            for flow in list(ring):
                if count == 0:
                    break
                shares[flow[0]] += 1
                count -= 1
                if shares[flow[0]] >= flow[3]:
                    ring.remove(flow)
    return dict(shares)

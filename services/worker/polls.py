"""Render polls at scale: due renders are polled in batches from the streams worker's event loop, instead of one
countdown task each.

A render waiting for its next poll is parked in the database (`stage = render_poll`, `wake_at` = when it is due).
The poller claims a batch of due ones in one statement (`FOR UPDATE SKIP LOCKED`: poller replicas never take the
same job), polls them concurrently, and writes the ones still rendering back in bulk: one statement for the jobs,
one for the turns, one insert for their progress events. Each is next due `REELMILL_RENDER_POLL_S` after this
poll, never earlier. A render that completed, failed or errored takes the ordinary path (runner.apply), one job
at a time.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update

from services.worker import flow, retry, runner
from services.worker.outcome import Advance, Outcome
from services.worker.steps import render
from shared.db import session_scope
from shared.domain.pace_view import render_slot_ttl_s
from shared.domain.transitions import job_event
from shared.nemo.upstream import get_pace
from shared.settings import get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Job, JobTurn, Stage
from shared.timeutil import utcnow

if TYPE_CHECKING:
    from services.worker.eventloop import LoopHost

log = logging.getLogger(__name__)
BATCH = 500
CONCURRENCY = 200  # polls in flight at once per process


def claim_due(owner: str, limit: int = BATCH) -> list[runner.Step]:
    now = utcnow()
    due = (
        select(Job.id)
        .where(
            Job.stage == Stage.render_poll,
            Job.wake_at <= now,
            Job.lease_owner.is_(None),
            Job.status.not_in(list(TERMINAL_JOB_STATUSES)),
        )
        .order_by(Job.wake_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    lease_until = now + timedelta(seconds=get_settings().lease_s)
    with session_scope() as session:
        jobs = list(
            session.execute(
                update(Job)
                .where(Job.id.in_(due.scalar_subquery()))
                .values(lease_owner=owner, lease_until=lease_until, wake_at=None)
                .returning(Job)
                .execution_options(synchronize_session=False)
            ).scalars()
        )
        ids = [job.id for job in jobs]
        turns = list(session.exec(select(JobTurn).where(JobTurn.job_id.in_(ids)).order_by(JobTurn.seq)).scalars())
        session.expunge_all()
    by_job: dict[str, list[JobTurn]] = {}
    for turn in turns:
        by_job.setdefault(turn.job_id, []).append(turn)
    return [runner.make_step(job, by_job.get(job.id, []), owner) for job in jobs]


async def poll_due(host: LoopHost) -> int:
    """Poll one batch of due renders; how many were due."""
    steps = await host.db(claim_due, host.owner)
    if not steps:
        return 0
    ttl = render_slot_ttl_s(get_settings())
    await host.db(get_pace().renew, "renders", [s.ctx.job.id for s in steps], ttl)
    limit = asyncio.Semaphore(CONCURRENCY)
    results = await asyncio.gather(*(_poll(step, host, limit) for step in steps))
    quiet = [(s, o) for s, o in results if isinstance(o, Advance) and o.stage == Stage.render_poll]
    rest = [(s, o) for s, o in results if not (isinstance(o, Advance) and o.stage == Stage.render_poll)]
    if quiet:
        await host.db(apply_quiet, quiet)
    await asyncio.gather(*(host.db(runner.apply_and_run, s, o) for s, o in rest))
    return len(steps)


async def _poll(step: runner.Step, host: LoopHost, limit: asyncio.Semaphore) -> tuple[runner.Step, Outcome]:
    ctx = step.ctx
    async with limit:
        try:
            if (nothing := render.unsubmitted(ctx)) is not None:
                return step, nothing
            status = await host.aclient.get_render(ctx.turn.render_id or "", profile=ctx.job.profile)
            return step, render.polled(ctx, status)
        except Exception as exc:
            return step, retry.decide(exc, ctx.job.attempts, Stage.render_poll, ctx.job.sessions_lost)


def apply_quiet(pairs: list[tuple[runner.Step, Outcome]]) -> None:
    """Renders still rendering: their figures, progress and next due time, for the whole batch in three statements."""
    settings, now = get_settings(), utcnow()
    jobs, turns, progressed = [], [], []
    for step, outcome in pairs:
        job, seq = step.ctx.job, step.ctx.job.step_seq
        plan = flow.decide(job, step.ctx.turns, outcome, now=now, progress_every_s=settings.progress_event_min_s)
        job.step_seq = seq + 1
        runner.set_lease(job, plan, step.ctx.owner, now)
        jobs.append(_job_row(job, seq, step.ctx.owner))
        turn = step.ctx.turn
        turns.append({"b_id": turn.id, "render_status": turn.render_status, "render_progress": turn.render_progress})
        if plan.progress_event:
            progressed.append(step)
    with session_scope() as session:
        session.execute(_JOBS_UPDATE, jobs)
        session.execute(_TURNS_UPDATE, turns)
        for step in progressed:
            job_event(session, step.ctx.job, "job.progress", turns=step.ctx.turns)


def _job_row(job: Job, seq: int, owner: str) -> dict[str, object]:
    return {
        "b_id": job.id,
        "b_owner": owner,
        "b_seq": seq,
        "step_seq": job.step_seq,
        "lease_owner": job.lease_owner,
        "lease_until": job.lease_until,
        "wake_at": job.wake_at,
        "attempts": job.attempts,
        "progress": job.progress,
        "last_progress_event_at": job.last_progress_event_at,
        "updated_at": job.updated_at,
    }


_jobs = Job.__table__  # type: ignore[attr-defined]
_turns = JobTurn.__table__  # type: ignore[attr-defined]
_JOBS_UPDATE = (
    update(_jobs)
    .where(
        _jobs.c.id == bindparam("b_id"),
        _jobs.c.lease_owner == bindparam("b_owner"),
        _jobs.c.step_seq == bindparam("b_seq"),
    )
    .values(
        {
            name: bindparam(name)
            for name in (
                "step_seq",
                "lease_owner",
                "lease_until",
                "wake_at",
                "attempts",
                "progress",
                "last_progress_event_at",
                "updated_at",
            )
        }
    )
)
_TURNS_UPDATE = (
    update(_turns)
    .where(_turns.c.id == bindparam("b_id"))
    .values(render_status=bindparam("render_status"), render_progress=bindparam("render_progress"))
)

"""Runs one job's steps: claim the lease (and read the checkpoint) in one transaction, run the stage, and apply its
outcome as services/worker/flow.py decides, in one transaction: the job's changed fields in one conditional UPDATE
(it lands only while this worker still holds the lease for this step), each changed turn in one UPDATE, the
events in one INSERT. Then the next stage runs right here (same queue, nothing to wait for), or is sent to its
queue after commit. Celery tasks call `run_step`; nothing else moves a job forward."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from services.worker import flow, lease, retry, statements
from services.worker.context import LeaseLost, StepContext
from services.worker.outcome import Fail, Finish, NextTurn, Outcome, describe
from services.worker.steps import message, record, render, setup, verify
from shared import metrics
from shared.artifacts.plan import plan_mirror
from shared.db import session_scope
from shared.db.hooks import after_commit
from shared.domain import dispatch, job_end
from shared.domain.transitions import STATUS_EVENTS, job_event
from shared.logs import job_context
from shared.nemo.client import one_pace_per_step
from shared.nemo.upstream import get_pace, paced_client
from shared.settings import get_settings
from shared.tables import Job, JobTurn, Stage
from shared.timeutil import utcnow

log = logging.getLogger(__name__)
S = Stage

Handler = Callable[[StepContext], Outcome]
HANDLERS: dict[Stage, Handler] = {
    S.credential: setup.credential,
    S.session: setup.session,
    S.upload: setup.upload,
    S.message: message.message,
    S.verify: verify.verify,
    S.credits: verify.credits,
    S.render_submit: render.submit,
    S.render_poll: render.poll,
    S.record: record.record,
}
# the writes are Core UPDATEs (services/worker/statements.py), no ORM bookkeeping
_JOB_FIELDS = list(statements.JOB_COLUMNS)
_TURN_FIELDS = list(statements.TURN_COLUMNS)
_JOBS = statements.JOBS


@dataclass
class Step:
    """A claimed job on its way through one task: the step context and what it looked like when last written."""

    ctx: StepContext
    written_job: dict[str, Any] = field(default_factory=dict)
    written_turns: list[dict[str, Any]] = field(default_factory=list)
    resumed: Stage | None = None

    def __post_init__(self) -> None:
        self.written_job = _fields(self.ctx.job, _JOB_FIELDS)
        self.written_turns = [_fields(t, _TURN_FIELDS) for t in self.ctx.turns]


def run_step(job_id: str, seq: int) -> None:
    step = claim(job_id, seq, lease.process_owner())
    if step is None:
        log.debug("job %s seq %s: stale or already running; dropped", job_id, seq)
        return
    run_chain(step)


def run_chain(step: Step) -> None:
    """Run a claimed job's stages one after the other while they belong here."""
    job_id, owner = step.ctx.job.id, step.ctx.owner
    with job_context(job_id), lease.held(job_id):
        try:
            current: Step | None = step
            while current is not None:
                current = run_one(current)
        except Exception:
            lease.release(job_id, owner)  # best effort: let the task's retry claim the job again at once
            raise


def claim(job_id: str, seq: int, owner: str) -> Step | None:
    with session_scope() as session:
        job = lease.claim(session, job_id, seq, owner)
        if job is None:
            return None
        resumed = _resume_claimed(session, job)
        turns = list(session.exec(select(JobTurn).where(JobTurn.job_id == job_id).order_by(JobTurn.seq)))
        session.expunge_all()
    if resumed is not None:
        job.stage, job.resume_stage = resumed, None
    return make_step(job, turns, owner)


def _resume_claimed(session: Session, job: Job) -> Stage | None:
    """A throttled job (granted its slot, or due after a wait) leaves `throttled` in the database as it is claimed,
    in the claim's transaction, not when its step ends: a job streaming on a granted slot must not look like one
    waiting in the scheduler's line for a slot (the API, the line's measure), and the pace's rebuild after a Redis
    flush counts it among the streams only at stage `message`. The stage it resumes, or None."""
    if job.stage != S.throttled:
        return None
    stage = Stage(job.resume_stage or S.session)
    session.execute(update(_JOBS).where(_JOBS.c.id == job.id).values(stage=stage, resume_stage=None))
    job_event(session, job, "job.stage", {"stage": stage.value})
    return stage


def make_step(job: Job, turns: list[JobTurn], owner: str) -> Step:
    """A claimed job (detached rows) ready to run."""
    ctx = StepContext(
        job=job,
        turns=turns,
        owner=owner,
        client=paced_client(),
        settings=get_settings(),
        is_canceled=lease.renewer.cancel_requested,
        pace=get_pace(),
    )
    step = Step(ctx)
    if job.stage == S.throttled:
        step.resumed = flow.resume(job)
    return step


def apply_and_run(step: Step, outcome: Outcome) -> None:
    """Apply an outcome reached on the event loop (a stream, a poll), then run whatever short steps follow here."""
    with job_context(step.ctx.job.id):
        following = apply(step, outcome, keep_short=True)
    if following is not None:
        run_chain(following)


def run_one(step: Step) -> Step | None:
    """Run the job's current stage and apply its outcome; the step to run next in this task, if any."""
    ctx = step.ctx
    started = time.monotonic()
    stage = Stage(ctx.job.stage)
    try:
        with one_pace_per_step():
            outcome = ctx.canceled() if ctx.job.cancel_requested or ctx.cancel_requested() else _run(ctx, stage)
    except LeaseLost:
        log.warning("lease lost during %s; another worker has the job", stage.value)
        return None
    except Exception as exc:
        outcome = retry.decide(exc, ctx.job.attempts, stage, ctx.job.sessions_lost)
        metrics.upstream_error(exc)
    metrics.step_finished(stage.value, time.monotonic() - started)
    return apply(step, outcome)


def _run(ctx: StepContext, stage: Stage) -> Outcome:
    try:
        handler = HANDLERS[flow.check_runnable(stage)]
    except (KeyError, ValueError) as exc:  # a bug: no retry can fix it
        log.error("job %s is at stage %r, which no handler runs", ctx.job.id, stage.value)
        return Fail("internal", f"reelmill cannot run stage {stage.value!r} ({exc})")
    return handler(ctx)


def apply(step: Step, outcome: Outcome, *, keep_short: bool = False) -> Step | None:
    """Write the outcome as the flow decides; the step to run next in this task, if any. ``keep_short``: a short
    stage due now runs here even from the other lane (the streams worker goes on with the steps after a stream in
    its database threads: one queue hop less per job)."""
    ctx, settings, now = step.ctx, get_settings(), utcnow()
    job, seq, before = ctx.job, ctx.job.step_seq, Stage(ctx.job.stage)
    recorded = ctx.turn if job.stage == S.record and isinstance(outcome, Finish | NextTurn) else None
    # the step's checkpoints wrote the turn already: an outcome that sets a field back (a new session clearing
    # `draft_before`, a refused send going back to `pending`) must be a change against them, not be lost
    step.written_turns = [_fields(t, _TURN_FIELDS) for t in ctx.turns]
    plan = flow.decide(job, ctx.turns, outcome, now=now, progress_every_s=settings.progress_event_min_s)
    if step.resumed is not None:
        plan.events.insert(0, ("job.stage", {"stage": step.resumed.value}))
        step.resumed = None
    if keep_short and plan.then == flow.Then.DISPATCH and plan.wait_s <= 0 and flow.runs_here_after_loop(job.stage):
        plan.then = flow.Then.RUN_HERE
    job.step_seq = seq + 1
    set_lease(job, plan, ctx.owner, now)
    with session_scope() as session:
        if not _write(session, step, seq):
            log.warning("lease lost before the outcome was written (%s); dropped", describe(outcome))
            return None
        if recorded is not None:  # the turn's output became the job's: copy it to the artifact store
            plan_mirror(session, job, recorded)  # (before the events: `job.succeeded` shows the pending copy)
        _emit(session, job, ctx.turns, plan)
        _after(session, job, plan)
        _free_capacity(session, ctx, before, plan)
    step.written_job = _fields(job, _JOB_FIELDS)
    step.written_turns = [_fields(t, _TURN_FIELDS) for t in ctx.turns]
    log.info("-> %s (%s)", job.stage.value, plan.note or describe(outcome))
    return step if plan.then == flow.Then.RUN_HERE else None


def set_lease(job: Job, plan: flow.Plan, owner: str, now: datetime) -> None:
    """Who holds the job next: this worker (it runs the next stage here), the queue (sent now, or parked until
    `wake_at` for the scheduler or the render poller), or nobody (it waits for a grant, or it ended). A job sent or
    parked that nobody takes by `lease_until` is sent again by the sweeper."""
    settings = get_settings()
    job.wake_at = None
    if plan.then == flow.Then.RUN_HERE:
        job.lease_owner, job.lease_until = owner, now + timedelta(seconds=settings.lease_s)
    elif plan.then == flow.Then.DISPATCH:
        job.lease_owner = None
        job.wake_at = now + timedelta(seconds=plan.wait_s) if plan.wait_s > 0 else None
        job.lease_until = now + timedelta(seconds=plan.wait_s + settings.queue_grace_s)
    else:
        job.lease_owner, job.lease_until = None, None


def _write(session: Session, step: Step, seq: int) -> bool:
    """The job's and turns' changed fields; False (nothing written) when the lease is no longer ours."""
    job = step.ctx.job
    changes = _diff(step.written_job, job, _JOB_FIELDS)
    where = {"w_id": job.id, "w_owner": step.ctx.owner, "w_seq": seq}
    moved = session.execute(statements.job_update(tuple(changes)), where | statements.set_params(changes)).rowcount
    if moved != 1:
        session.rollback()
        return False
    for turn, written in zip(step.ctx.turns, step.written_turns, strict=True):
        turn_changes = _diff(written, turn, _TURN_FIELDS)
        if turn_changes:
            params = {"w_id": turn.id} | statements.set_params(turn_changes)
            session.execute(statements.turn_update(tuple(turn_changes)), params)
    return True


def _emit(session: Session, job: Job, turns: list[JobTurn], plan: flow.Plan) -> None:
    for type_, data in plan.events:
        job_event(session, job, type_, data)
    if plan.status in STATUS_EVENTS:
        job_event(session, job, STATUS_EVENTS[plan.status], turns=turns)
    if plan.progress_event:
        job_event(session, job, "job.progress", turns=turns)


def _after(session: Session, job: Job, plan: flow.Plan) -> None:
    job_id, seq, stage = job.id, job.step_seq, job.stage
    if plan.then == flow.Then.DISPATCH and plan.wait_s <= 0:  # a parked job is taken when due, not sent now

        def send() -> None:
            d = dispatch.current()
            if d is not None:
                d.job(job_id, seq, stage.value)

        after_commit(session, send)
    if plan.then == flow.Then.END:
        job_end.after_job_end(session, job, cancel_render=plan.cancel_render)
    if plan.pause_batch and job.batch_id:
        job_end.pause_batch_after_commit(session, job.batch_id, plan.pause_batch)


RENDERING = frozenset({S.render_submit, S.render_poll})


def _free_capacity(session: Session, ctx: StepContext, before: Stage, plan: flow.Plan) -> None:
    """After commit, give back the render slot of a job whose render ended. (A stream's slot goes back when its
    send ends: steps/message.py, streams.py; every slot of a job that ended: shared/domain/job_end.py.)"""
    job, pace = ctx.job, ctx.pace
    if pace is None or plan.then == flow.Then.END:
        return
    was = flow.queue_stage(before, job.resume_stage)
    if was in RENDERING and flow.queue_stage(job.stage, job.resume_stage) not in RENDERING:
        job_id = job.id
        after_commit(session, lambda: pace.release("renders", job_id))


def _fields(row: object, names: list[str]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def _diff(written: dict[str, Any], row: object, names: list[str]) -> dict[str, Any]:
    """The fields of ``row`` that differ from what was last written (rows' JSON is replaced, never edited in
    place, so a comparison by value finds every change)."""
    return {name: getattr(row, name) for name in names if getattr(row, name) != written[name]}

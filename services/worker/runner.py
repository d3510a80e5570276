"""Runs one job's steps: claim the lease (and read the checkpoint) in one transaction, run the stage, apply its
Outcome in one transaction, and either go straight on to the next stage in this task (same queue, nothing to wait
for) or enqueue it after commit. Celery tasks call `run_step`; nothing else moves a job forward."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, update
from sqlmodel import Session, select

from services.worker import flow, lease, retry
from services.worker.context import LeaseLost, StepContext
from services.worker.outcome import Outcome
from shared import metrics
from shared.artifacts.plan import plan_mirror
from shared.db import session_scope
from shared.db.hooks import after_commit
from shared.domain import batches, dispatch
from shared.domain.job_hooks import job_end_hooks
from shared.domain.transitions import job_event, report_progress, set_stage, set_status
from shared.logs import job_context
from shared.nemo.upstream import cancel_render_quietly, get_client
from shared.settings import get_settings
from shared.tables import Job, JobStatus, JobTurn, MessageState, Stage, TurnStatus
from shared.timeutil import utcnow

log = logging.getLogger(__name__)


def run_step(job_id: str, seq: int) -> None:
    owner = lease.new_owner()
    ctx = _claim(job_id, seq, owner)
    if ctx is None:
        log.debug("job %s seq %s: stale or already running; dropped", job_id, seq)
        return
    with job_context(job_id), lease.held(job_id, owner):
        try:
            while ctx is not None:
                ctx = _run_one(ctx)
        except Exception:
            lease.release(job_id, owner)  # best effort: let the task's retry claim the job again at once
            raise


def _claim(job_id: str, seq: int, owner: str) -> StepContext | None:
    with session_scope() as session:
        job = lease.claim(session, job_id, seq, owner)
        if job is None:
            return None
        turns = list(session.exec(select(JobTurn).where(JobTurn.job_id == job_id).order_by(JobTurn.seq)))
        session.expunge_all()
    return _context(job, turns, owner)


def _context(job: Job, turns: list[JobTurn], owner: str) -> StepContext:
    return StepContext(job=job, turns=turns, owner=owner, client=get_client(), settings=get_settings())


def _run_one(ctx: StepContext) -> StepContext | None:
    """Run the job's current stage; return the context for the next stage when it runs right here."""
    stage, started = ctx.job.stage, time.monotonic()
    try:
        outcome = _cancel(ctx) if ctx.job.cancel_requested or ctx.cancel_requested() else flow.run_stage(ctx)
    except LeaseLost:
        log.warning("lease lost during %s; another worker has the job", stage)
        return None
    except Exception as exc:
        outcome = retry.decide(exc, ctx.job.attempts)
        metrics.upstream_error(exc)
    metrics.step_finished(stage, time.monotonic() - started)
    return _apply(ctx, outcome)


def _cancel(ctx: StepContext) -> Outcome:
    turn = ctx.turn
    in_flight = turn.render_id if turn.render_submitted and not turn.output else None
    return Outcome.canceled(in_flight)


def _apply(ctx: StepContext, outcome: Outcome) -> StepContext | None:
    if outcome.light:
        _apply_light(ctx, outcome)
        return None
    seq = ctx.job.step_seq
    with session_scope() as session:
        job = session.exec(select(Job).where(Job.id == ctx.job.id).with_for_update()).one()
        if job.lease_owner != ctx.owner or job.step_seq != seq:
            log.warning("lease lost before the outcome was written (%s); dropped", outcome.note)
            return None
        turns = list(session.exec(select(JobTurn).where(JobTurn.job_id == job.id).order_by(JobTurn.seq)))
        _write_fields(job, turns, outcome)
        if job.stage == Stage.record.value and outcome.error is None:  # the output becomes the job's: copy it
            plan_mirror(session, job, turns[job.turn_index])
        if outcome.new_session and turns[job.turn_index].kind == "revision":
            outcome = _session_expired(job, turns)
            turns[job.turn_index].suggested_job = outcome.turn["suggested_job"]
        if outcome.status == JobStatus.succeeded and job.turn_index < len(turns) - 1:
            # a follow-up message arrived while this turn finished: run it instead of ending the job
            outcome.status, outcome.next_turn, outcome.progress = None, True, None
        if _out_of_credits_in_batch(job, outcome):
            _wait_for_credits(session, job, turns[job.turn_index], outcome)
            chain = False
        elif outcome.status is not None and outcome.status.terminal:
            _finish(session, job, turns, outcome)
            chain = False
        else:
            chain = _continue(session, job, turns, outcome, ctx.owner)
        session.flush()
        session.expunge_all()
    log.info("%s -> %s (%s)", ctx.job.stage, job.stage, outcome.note or "ok")
    return _context(job, turns, ctx.owner) if chain else None


def _apply_light(ctx: StepContext, outcome: Outcome) -> None:
    """A render poll that only moved the render's figures (most polls): two UPDATEs, no rows read."""
    job, turn = ctx.job, ctx.turn
    lease_until = utcnow() + timedelta(seconds=outcome.countdown + get_settings().queue_grace_s)
    progress = flow.progress(job.stage, job.turn_index, len(ctx.turns), int(outcome.turn.get("render_progress", 0)))
    with session_scope() as session:
        moved = session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(Job.id == job.id, Job.lease_owner == ctx.owner, Job.step_seq == job.step_seq)
            .values(
                step_seq=job.step_seq + 1,
                lease_owner=None,
                lease_until=lease_until,
                attempts=0,
                progress=func.greatest(Job.progress, progress) if _is_pg(session) else max(job.progress, progress),
                updated_at=utcnow(),
            )
        ).rowcount
        if moved != 1:
            log.warning("lease lost before the poll was written; dropped")
            return
        session.exec(update(JobTurn).where(JobTurn.id == turn.id).values(**outcome.turn))  # type: ignore[call-overload]
        job_id, seq, stage, countdown = job.id, job.step_seq + 1, job.stage, outcome.countdown

        def send() -> None:
            d = dispatch.current()
            if d is not None:
                d.job(job_id, seq, stage, countdown)

        after_commit(session, send)
    log.debug("%s (%s)", stage, outcome.note)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _write_fields(job: Job, turns: list[JobTurn], outcome: Outcome) -> None:
    turn = turns[job.turn_index]
    for name, value in outcome.turn.items():
        setattr(turn, name, value)
    for name, value in outcome.job.items():
        setattr(job, name, value)
    if turn.status == TurnStatus.pending.value:
        turn.status = TurnStatus.running.value
    job.attempts = job.attempts + 1 if outcome.retry else 0
    job.step_seq += 1
    job.lease_owner = None


def _continue(session: Session, job: Job, turns: list[JobTurn], outcome: Outcome, owner: str) -> bool:
    """Move the job to its next stage. True when that stage runs next in this same task (the lease is kept)."""
    before = job.stage
    if outcome.status is not None:
        set_status(session, job, outcome.status, turns)
    elif job.status == JobStatus.queued.value and before != Stage.credential.value:
        set_status(session, job, JobStatus.processing, turns)  # a finished job reopened by a follow-up message
    if outcome.new_session:
        _reset_session(job, turns)
        stage = Stage.session.value
    elif outcome.next_turn:
        job.turn_index += 1
        stage = flow.first_stage(job, turns[job.turn_index])
    else:
        stage = flow.resolve(outcome, job, turns[job.turn_index], before)
    set_stage(session, job, stage)
    turn = turns[job.turn_index]
    report_progress(session, job, flow.progress(stage, job.turn_index, len(turns), turn.render_progress), turns)
    settings = get_settings()
    if outcome.countdown == 0 and flow.same_lane(before, stage) and not outcome.retry:
        job.lease_owner = owner
        job.lease_until = utcnow() + timedelta(seconds=settings.lease_s)
        session.add(job)
        return True
    job.lease_until = utcnow() + timedelta(seconds=outcome.countdown + settings.queue_grace_s)
    session.add(job)
    job_id, step_seq, countdown = job.id, job.step_seq, outcome.countdown

    def send() -> None:
        d = dispatch.current()
        if d is not None:
            d.job(job_id, step_seq, stage, countdown)

    after_commit(session, send)
    return False


def _session_expired(job: Job, turns: list[JobTurn]) -> Outcome:
    """A follow-up on a finished job found its upstream session gone: the timeline is lost with it. Say so, and
    offer the request that rebuilds it in a new job."""
    replayable = [t for t in turns if t.intent in ("sse", "upload")]
    suggestion = {
        "profile": job.profile,
        "prompt": replayable[0].instruction if replayable else job.prompt,
        "steps": [{"text": t.instruction, "assets": list(t.assets or [])} for t in replayable],
        "output": {"format": job.output_format, "quality": job.output_quality},
        "language": job.language,
    }
    message = (
        "The NemoVideo session of this job has expired, and its timeline with it. Start a new job with the same "
        "instructions: POST /v1/jobs with the body in this revision's suggested_job."
    )
    return Outcome.fail("session_expired", message, turn={"suggested_job": suggestion})


def _out_of_credits_in_batch(job: Job, outcome: Outcome) -> bool:
    return bool(job.batch_id) and outcome.status == JobStatus.failed and (outcome.error or ("",))[0] == "out_of_credits"


def _wait_for_credits(session: Session, job: Job, turn: JobTurn, outcome: Outcome) -> None:
    """A batch job that met 2001 goes back to waiting (nothing was spent: the message was refused), and its batch
    pauses, instead of failing its jobs one by one; `POST /v1/batches/{id}/resume` continues it."""
    reason = outcome.error[1] if outcome.error else "out of credits"
    if turn.message_state == MessageState.sending.value:
        turn.message_state = MessageState.pending.value
    job.status, job.stage, job.attempts = JobStatus.queued.value, Stage.queued.value, 0
    job.lease_owner, job.lease_until = None, None
    session.add_all([job, turn])
    job_event(session, job, "job.waiting", {"reason": reason, "stage": Stage.queued.value})
    batch_id = job.batch_id or ""
    after_commit(session, lambda: batches.pause_for_credits(batch_id, reason))


def _reset_session(job: Job, turns: list[JobTurn]) -> None:
    """The upstream lost the session: a new one gets every turn so far replayed (uploads and messages)."""
    job.session_id = job.task_id = None
    for turn in turns[: job.turn_index + 1]:
        turn.upload_done = False
        if turn.message_state != MessageState.skipped.value:
            turn.message_state = MessageState.pending.value
        turn.draft_before = None
    job.turn_index = 0


def _finish(session: Session, job: Job, turns: list[JobTurn], outcome: Outcome) -> None:
    status = outcome.status
    assert status is not None
    turn = turns[job.turn_index]
    if turn.status != TurnStatus.succeeded.value:
        turn.status = TurnStatus.succeeded.value if status == JobStatus.succeeded else status.value
        turn.completed_at = turn.completed_at or utcnow()
        if outcome.error:
            turn.error_code, turn.error_message = outcome.error
    session.add(turn)
    code, message = outcome.error or (None, None)
    if status == JobStatus.succeeded:
        job.stage, job.progress = Stage.done.value, 100
    set_status(session, job, status, turns, error_code=code, error_message=message)
    _after_end(session, job, outcome.cancel_render)


def _after_end(session: Session, job: Job, cancel_render: str | None) -> None:
    job_id, batch_id, profile = job.id, job.batch_id, job.profile
    files = [f["path"] for f in job.files or []]

    def done() -> None:
        if cancel_render:
            cancel_render_quietly(profile, cancel_render)
        for path in files:
            Path(path).unlink(missing_ok=True)
        for hook in job_end_hooks():
            hook(job_id, batch_id)

    after_commit(session, done)

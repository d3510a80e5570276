"""The job flow: every stage, every path, and what happens to a job after each outcome. Pure: no database, no
network; `decide` changes the job and turn objects it is given and says what the runner must do next.

A job is one upstream session. Its work is a list of turns: its prompt (or each of its `steps`), then every
follow-up message (a revision). Before its first turn a job gets a credential and a session; what a turn then does
depends on its intent, routed from its text as the seeds route a user's words:

    sse      upload -> message -> verify -> render_submit -> render_poll (every N s) -> record
    export            verify -> render_submit -> render_poll -> record        (no SSE call)
    state             verify -> record                                        (no SSE call)
    credits           credits -> record                                       (no SSE call)
    upload   upload -> record                                                 (no SSE call)

A turn replayed into a new session (the upstream lost the old one) redoes only what built the timeline: its
uploads and its message. `message` runs on the streams queue, every other stage on the steps queue.

What each outcome (services/worker/outcome.py) does to the job:

    Advance      write the step's fields; go to the named stage or the next on the turn's path. The same queue
                 and no wait: run it right here, in this task; otherwise send it to its queue (after `wait_s`).
    RetryAfter   the same stage again after `delay_s`; `spend` counts an attempt (retry.py fails the job once the
                 budget is spent); a wait that spends nothing (an edit still running upstream) does not.
    Throttle     stage `throttled`: the job waits in the database for NemoVideo capacity (or for a 429's pause to
                 pass), then resumes the stage it was going to run. Spends nothing.
    NewSession   a new session, every turn so far replayed into it (uploads and messages: the timeline rebuilt),
                 then the current turn goes on. Only a follow-up on a finished job whose uploaded files are gone
                 (freed when it first ended) cannot be replayed: the job fails `session_expired` with the request
                 that rebuilds it (`suggested_job`).
    NextTurn     the turn succeeded; the next turn starts (in the same session).
    Finish       the last turn succeeded: the job succeeds; if a follow-up arrived meanwhile, that turn runs instead.
    Fail         the job fails (every open turn ends with it); in a batch, "out of credits" instead sends the job
                 back to wait and pauses its batch (nothing was spent: the message was refused).
    Cancel       the job is canceled (an upstream render in flight is canceled after commit).

Statuses follow from stages: `queued` until admitted, `starting` while it gets a credential and a session,
`processing` from its first turn's work on, then `succeeded`, `failed` or `canceled` (terminal). A follow-up
message on a finished job sends it back to `processing` for the new revision; `progress` is the progress of the
revision in flight (0-100).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from services.worker.outcome import (
    Advance,
    Cancel,
    Fail,
    Finish,
    NewSession,
    NextTurn,
    Outcome,
    RetryAfter,
    Throttle,
)
from shared.tables import Job, JobStatus, JobTurn, MessageState, Stage, TurnStatus
from shared.taskq.queues import STREAM_STAGES
from shared.timeutil import as_utc

S = Stage

TURN_PATHS: dict[str, tuple[Stage, ...]] = {
    "sse": (S.upload, S.message, S.verify, S.render_submit, S.render_poll, S.record),
    "export": (S.verify, S.render_submit, S.render_poll, S.record),
    "state": (S.verify, S.record),
    "credits": (S.credits, S.record),
    "upload": (S.upload, S.record),
}
REPLAY_PATHS: dict[str, tuple[Stage, ...]] = {
    "sse": (S.upload, S.message, S.record),
    "upload": (S.upload, S.record),
}
SETUP = (S.credential, S.session)
RUNNABLE = frozenset({*SETUP, *(s for path in TURN_PATHS.values() for s in path)})

# How far through one turn each stage is (0..1), for the revision's progress.
STAGE_SHARE: dict[Stage, float] = {
    S.queued: 0.0,
    S.credential: 0.02,
    S.session: 0.05,
    S.upload: 0.1,
    S.message: 0.15,
    S.verify: 0.45,
    S.credits: 0.45,
    S.render_submit: 0.5,
    S.render_poll: 0.55,
    S.record: 0.98,
}


class Then(Enum):
    RUN_HERE = "run_here"  # the next stage runs in this task (same queue, nothing to wait for)
    DISPATCH = "dispatch"  # the next stage is sent to its queue (after `wait_s`)
    WAIT = "wait"  # the job waits in the database until something grants it (capacity, a resumed batch)
    END = "end"  # the job ended


@dataclass
class Plan:
    """What the runner does with an outcome, after `decide` changed the job and its turns."""

    then: Then
    wait_s: float = 0.0
    status: JobStatus | None = None  # a status change; its event (with the whole job) goes out with it
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # live events (stage, waits)
    progress_event: bool = False  # a `job.progress` event is due
    cancel_render: str | None = None  # after commit
    pause_batch: str | None = None  # the reason, after commit
    spent_attempt: bool = False
    note: str = ""


# ---- paths ------------------------------------------------------------------------------------------------


def turn_path(turn: JobTurn) -> tuple[Stage, ...]:
    if turn.status == TurnStatus.succeeded:  # a replay into a new session
        return REPLAY_PATHS.get(turn.intent, (S.record,))
    return TURN_PATHS.get(turn.intent, TURN_PATHS["sse"])


def first_stage(job: Job, turn: JobTurn) -> Stage:
    """Where a turn starts: its path, once the job has an upstream session."""
    return turn_path(turn)[0] if job.session_id else S.session


def next_stage(job: Job, turn: JobTurn, current: Stage) -> Stage:
    if current == S.credential:
        return S.session
    path = turn_path(turn)
    if current == S.session or current not in path:
        return path[0]
    return path[min(path.index(current) + 1, len(path) - 1)]


def check_runnable(stage: Stage) -> Stage:
    """A stage a worker can run; anything else (queued, done, an unknown value) is a bug: raise."""
    stage = Stage(stage)
    if stage not in RUNNABLE:
        raise ValueError(f"stage {stage.value!r} is not one a worker runs")
    return stage


def same_lane(a: Stage, b: Stage) -> bool:
    """Whether stages `a` and `b` run on the same queue (so one task may run both, one after the other)."""
    return (a in STREAM_STAGES) == (b in STREAM_STAGES)


def runs_here_after_loop(stage: Stage) -> bool:
    """Whether a stage due now may run in the streams worker's database threads after an outcome reached on its
    event loop. Not a stream, and not `throttled`: a job whose 429 pause is already over (an HTTP-date
    `Retry-After` in the past) goes through its queue, and the claim there resumes its stage."""
    return stage not in STREAM_STAGES and stage != S.throttled


def queue_stage(stage: Stage, resume_stage: Stage | None) -> Stage:
    """The stage whose queue a job is sent to: a throttled job goes where it resumes."""
    return resume_stage if stage == S.throttled and resume_stage else stage


def status_for(stage: Stage) -> JobStatus:
    return JobStatus.starting if stage in SETUP else JobStatus.processing


def progress(stage: Stage, render_progress: int = 0, index: int = 0, count: int = 1) -> int:
    """The progress of the revision in flight, 0-99 (100 is written when the job succeeds): turn ``index`` of
    the revision's ``count`` turns is at ``stage``."""
    share = STAGE_SHARE.get(stage, 0.0)
    if stage == S.render_poll:
        share += 0.4 * max(0, min(render_progress, 100)) / 100
    return min(99, int(100 * (index + share) / max(count, 1)))


# ---- decide -------------------------------------------------------------------------------------------------


def decide(job: Job, turns: Sequence[JobTurn], outcome: Outcome, *, now: datetime, progress_every_s: float) -> Plan:
    """Apply ``outcome`` of the job's current stage to ``job`` and ``turns`` (in memory) and return the plan."""
    turn = turns[job.turn_index]
    job.updated_at = now
    match outcome:
        case Advance():
            _write(job, turn, outcome.turn, outcome.job)
            target = outcome.stage or next_stage(job, turn, Stage(job.stage))
            plan = _go(job, turn, target, wait_s=outcome.wait_s, note=outcome.note)
        case RetryAfter():
            plan = _retry(job, turn, outcome)
        case Throttle():
            plan = _throttle(job, turn, outcome)
        case NewSession():
            plan = _expired(job, turns) if turn.kind == "revision" and job.files else _new_session(job, turns, outcome)
        case NextTurn():
            plan = _next_turn(job, turns, outcome)
        case Finish():
            plan = _next_turn(job, turns, outcome) if job.turn_index < len(turns) - 1 else _succeed(job, turn, outcome)
        case Fail():
            plan = _fail(job, turns, outcome)
        case Cancel():
            plan = _end(
                job, turns, JobStatus.canceled, (outcome.code, outcome.message), cancel_render=outcome.render_id
            )
        case _:
            raise TypeError(f"not an outcome: {outcome!r}")
    if plan.status == JobStatus.starting and job.started_at is None:
        job.started_at = now
    _progress(job, turns, plan, now, progress_every_s)
    return plan


def _write(job: Job, turn: JobTurn, turn_fields: dict[str, Any], job_fields: dict[str, Any]) -> None:
    for name, value in turn_fields.items():
        setattr(turn, name, value)
    for name, value in job_fields.items():
        setattr(job, name, value)
    if turn.status == TurnStatus.pending:
        turn.status = TurnStatus.running


def _go(job: Job, turn: JobTurn, target: Stage, *, wait_s: float = 0.0, note: str = "") -> Plan:
    """Move the job to ``target``: run it here when it can, else send it to its queue."""
    before = Stage(job.stage)
    job.attempts = 0
    plan = Plan(then=Then.DISPATCH, wait_s=wait_s, note=note)
    _enter(job, target, plan)
    if wait_s == 0 and before != S.throttled and same_lane(before, target):
        plan.then = Then.RUN_HERE
    return plan


def _enter(job: Job, stage: Stage, plan: Plan) -> None:
    """Set the job's stage (its event) and the status that goes with it."""
    if job.stage != stage:
        job.stage = stage
        plan.events.append(("job.stage", {"stage": stage.value}))
    status = status_for(stage)
    if job.status != status and not (status == JobStatus.starting and job.status == JobStatus.processing):
        job.status = status
        plan.status = status


def _retry(job: Job, turn: JobTurn, outcome: RetryAfter) -> Plan:
    _write(job, turn, outcome.turn, outcome.job)
    if outcome.spend:
        job.attempts += 1
    return Plan(then=Then.DISPATCH, wait_s=outcome.delay_s, spent_attempt=outcome.spend, note=outcome.reason)


def _throttle(job: Job, turn: JobTurn, outcome: Throttle) -> Plan:
    _write(job, turn, outcome.turn, {})
    job.resume_stage = Stage(job.stage) if job.stage != S.throttled else job.resume_stage
    job.stage = S.throttled
    data = {"stage": S.throttled.value, "resource": outcome.resource, "reason": outcome.reason}
    if outcome.wait_s is not None:
        data["wait_s"] = round(outcome.wait_s, 3)
    plan = Plan(then=Then.WAIT, events=[("job.throttled", data)], note=outcome.reason)
    if outcome.wait_s is not None:
        plan.then, plan.wait_s = Then.DISPATCH, outcome.wait_s
    return plan


def resume(job: Job) -> Stage:
    """A throttled job granted capacity: back to the stage it was going to run."""
    stage = Stage(job.resume_stage or S.session)
    job.stage, job.resume_stage = stage, None
    return stage


def _new_session(job: Job, turns: Sequence[JobTurn], outcome: NewSession) -> Plan:
    """The upstream lost the session: a new one gets every turn so far replayed (uploads and messages)."""
    job.session_id = job.task_id = None
    job.draft_fp = None
    for turn in turns[: job.turn_index + 1]:
        turn.upload_done = False
        if turn.message_state != MessageState.skipped:
            turn.message_state = MessageState.pending
        turn.draft_before = None
    job.turn_index = 0
    job.sessions_lost += 1  # each replay is paid for: retry.py fails a job whose sessions keep vanishing
    plan = _go(job, turns[0], S.session, note=outcome.reason)
    plan.spent_attempt = True
    plan.then = Then.DISPATCH  # a fresh task: the replay starts clean
    return plan


def _expired(job: Job, turns: Sequence[JobTurn]) -> Plan:
    """A follow-up on a finished job found its session gone, and the files its first turn uploaded were freed when
    the job ended: the timeline cannot be rebuilt here. Say so, and offer the request that rebuilds it."""
    replayable = [t for t in turns if t.intent in ("sse", "upload")]
    turns[job.turn_index].suggested_job = {
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
    return _end(job, turns, JobStatus.failed, ("session_expired", message))


def _next_turn(job: Job, turns: Sequence[JobTurn], outcome: NextTurn | Finish) -> Plan:
    turn = turns[job.turn_index]
    _write(job, turn, outcome.turn, outcome.job)
    turn.status, turn.completed_at = TurnStatus.succeeded, turn.completed_at or job.updated_at
    job.turn_index += 1
    return _go(job, turns[job.turn_index], first_stage(job, turns[job.turn_index]), note=outcome.note)


def _succeed(job: Job, turn: JobTurn, outcome: Finish) -> Plan:
    _write(job, turn, outcome.turn, outcome.job)
    plan = _end(job, [turn], JobStatus.succeeded, None)
    job.stage, job.progress = S.done, 100
    plan.note = outcome.note
    return plan


def _fail(job: Job, turns: Sequence[JobTurn], outcome: Fail) -> Plan:
    turn = turns[job.turn_index]
    _write(job, turn, outcome.turn, {})
    if job.batch_id and outcome.code == "out_of_credits":
        return _wait_for_credits(job, turn, outcome.message)
    return _end(job, turns, JobStatus.failed, (outcome.code, outcome.message))


def _wait_for_credits(job: Job, turn: JobTurn, reason: str) -> Plan:
    """A batch job that met 2001 goes back to waiting (nothing was spent: the message was refused), and its batch
    pauses, instead of failing its jobs one by one; `POST /v1/batches/{id}/resume` continues it."""
    if turn.message_state == MessageState.sending:
        turn.message_state = MessageState.pending
    job.status, job.stage, job.attempts = JobStatus.queued, S.queued, 0
    event = ("job.waiting", {"reason": reason, "stage": S.queued.value})
    return Plan(then=Then.WAIT, status=None, events=[event], pause_batch=reason, note="out of credits: batch paused")


def _end(
    job: Job,
    turns: Sequence[JobTurn],
    status: JobStatus,
    error: tuple[str, str] | None,
    *,
    cancel_render: str | None = None,
) -> Plan:
    """The job ends with ``status``; so does every turn still open (a revision never stays `running`)."""
    turn_status = TurnStatus.succeeded if status == JobStatus.succeeded else TurnStatus(status.value)
    for turn in turns:
        if turn.status not in (TurnStatus.pending, TurnStatus.running):
            continue
        turn.status = turn_status
        turn.completed_at = turn.completed_at or job.updated_at
        if error and turn.error_code is None:
            turn.error_code, turn.error_message = error
    job.status = status
    job.completed_at = job.updated_at
    if error:
        job.error_code, job.error_message = error
    return Plan(then=Then.END, status=status, cancel_render=cancel_render, note=error[0] if error else status.value)


def _progress(job: Job, turns: Sequence[JobTurn], plan: Plan, now: datetime, every_s: float) -> None:
    if plan.then == Then.END or job.stage in (S.throttled, S.queued):
        return
    turn = turns[job.turn_index]
    value = progress(Stage(job.stage), turn.render_progress, *_place(turns, turn))
    if value <= job.progress:
        return
    job.progress = value
    last = as_utc(job.last_progress_event_at)  # SQLite hands back naive UTC
    if last is None or now - last >= timedelta(seconds=every_s):
        job.last_progress_event_at = now
        plan.progress_event = True


def _place(turns: Sequence[JobTurn], turn: JobTurn) -> tuple[int, int]:
    """(index, count) of ``turn`` in its revision: the job's own steps make the first revision together; each
    follow-up message is a revision of its own."""
    if turn.kind != "step":
        return 0, 1
    steps = [t for t in turns if t.kind == "step"]
    return steps.index(turn), len(steps)

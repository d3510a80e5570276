"""The job flow, as one explicit state machine.

    credential -> session -> [the turn's path] -> next turn (same session) ... -> done

A job's work is a list of turns (its prompt or steps, then any follow-up messages). What a turn does depends on
its intent, routed from its text as the seeds route a user's words:

    sse      upload -> message -> verify -> render_submit -> render_poll (every N s) -> record
    export            verify -> render_submit -> render_poll -> record        (no SSE call)
    state             verify -> record                                        (no SSE call)
    credits           credits -> record                                       (no SSE call)
    upload   upload -> record                                                 (no SSE call)

A turn replayed into a new session (the upstream lost the old one) only redoes what built the timeline: its
uploads and its message. Each stage is a small function in services/worker/steps/ that reads the checkpoint, makes
one upstream call (or one wait), and returns an Outcome; services/worker/runner.py applies it. `message` runs on
the streams queue, everything else on the steps queue.
"""

from __future__ import annotations

from collections.abc import Callable

from services.worker.context import StepContext
from services.worker.outcome import NEXT, Outcome
from services.worker.steps import message, record, render, setup, verify
from shared.tables import Job, JobTurn, Stage, TurnStatus
from shared.taskq.queues import STREAM_STAGES

Handler = Callable[[StepContext], Outcome]
S = Stage

HANDLERS: dict[str, Handler] = {
    S.credential.value: setup.credential,
    S.session.value: setup.session,
    S.upload.value: setup.upload,
    S.message.value: message.message,
    S.verify.value: verify.verify,
    S.credits.value: verify.credits,
    S.render_submit.value: render.submit,
    S.render_poll.value: render.poll,
    S.record.value: record.record,
}

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

# How far through one turn each stage is (0..1), for the job's progress.
STAGE_SHARE: dict[str, float] = {
    S.queued.value: 0.0,
    S.credential.value: 0.02,
    S.session.value: 0.05,
    S.upload.value: 0.1,
    S.message.value: 0.15,
    S.verify.value: 0.45,
    S.credits.value: 0.45,
    S.render_submit.value: 0.5,
    S.render_poll.value: 0.55,
    S.record.value: 0.98,
}


def turn_path(turn: JobTurn) -> tuple[Stage, ...]:
    if turn.status == TurnStatus.succeeded.value:  # a replay into a new session
        return REPLAY_PATHS.get(turn.intent, (S.record,))
    return TURN_PATHS.get(turn.intent, TURN_PATHS["sse"])


def first_stage(job: Job, turn: JobTurn) -> str:
    """Where a turn starts: its path, once the job has an upstream session."""
    return turn_path(turn)[0].value if job.session_id else S.session.value


def next_stage(job: Job, turn: JobTurn, current: str) -> str:
    if current == S.credential.value:
        return S.session.value
    path = [stage.value for stage in turn_path(turn)]
    if current == S.session.value or current not in path:
        return path[0]
    return path[min(path.index(current) + 1, len(path) - 1)]


def same_lane(a: str, b: str) -> bool:
    """Whether stages ``a`` and ``b`` run on the same queue (so one task may run both, one after the other)."""
    return (a in STREAM_STAGES) == (b in STREAM_STAGES)


def run_stage(ctx: StepContext) -> Outcome:
    handler = HANDLERS.get(ctx.job.stage)
    if handler is None:
        raise RuntimeError(f"job {ctx.job.id} is at stage {ctx.job.stage!r}, which no handler runs")
    return handler(ctx)


def resolve(outcome: Outcome, job: Job, turn: JobTurn, current: str) -> str:
    """The stage an outcome leads to: a named one, the same one (a retry), or the next on the turn's path."""
    if outcome.next_stage == NEXT:
        return next_stage(job, turn, current)
    return outcome.next_stage or current


def progress(stage: str, turn_index: int, turns: int, render_progress: int = 0) -> int:
    share = STAGE_SHARE.get(stage, 0.0)
    if stage == S.render_poll.value:
        share += 0.4 * max(0, min(render_progress, 100)) / 100
    return min(99, int(100 * (turn_index + share) / max(turns, 1)))

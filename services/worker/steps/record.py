"""record: the turn is done; its output becomes the job's. Then the next turn, or the job succeeds."""

from __future__ import annotations

from services.worker.context import StepContext
from services.worker.outcome import Finish, NextTurn
from shared.timeutil import utcnow


def record(ctx: StepContext) -> Finish | NextTurn:
    turn = ctx.turn
    done = {"completed_at": turn.completed_at or utcnow()}
    job = {"output": turn.output or ctx.job.output}
    if ctx.is_last_turn:
        return Finish(turn=done, job=job)
    return NextTurn(turn=done, job=job, note=f"turn {turn.seq} done")

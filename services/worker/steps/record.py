"""record: the turn is done; its output becomes the job's. Then the next turn, or the job succeeds."""

from __future__ import annotations

from services.worker.context import StepContext
from services.worker.outcome import Outcome
from shared.tables import JobStatus, TurnStatus
from shared.timeutil import utcnow


def record(ctx: StepContext) -> Outcome:
    turn = ctx.turn
    output = turn.output or ctx.job.output
    fields = {"status": TurnStatus.succeeded.value, "completed_at": turn.completed_at or utcnow()}
    job = {"output": output}
    if ctx.is_last_turn:
        return Outcome(status=JobStatus.succeeded, turn=fields, job=job, progress=100, note="succeeded")
    return Outcome(next_turn=True, turn=fields, job=job, note=f"turn {turn.seq} done")

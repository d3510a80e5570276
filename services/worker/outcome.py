"""What a step returns: the checkpoint to write and where the job goes next. The runner applies it in one
transaction, together with the events it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.tables import JobStatus

NEXT = "<next>"  # the next stage on the turn's path (services/worker/flow.py decides which)


@dataclass
class Outcome:
    next_stage: str | None = None  # None: run the same stage again (a retry)
    countdown: float = 0.0
    job: dict[str, Any] = field(default_factory=dict)  # Job fields to set
    turn: dict[str, Any] = field(default_factory=dict)  # fields of the current JobTurn to set
    status: JobStatus | None = None  # a status change (events follow from it)
    error: tuple[str, str] | None = None  # (code, message) for failed/canceled
    progress: int | None = None
    retry: bool = False  # a transient failure: counts against the attempt budget
    new_session: bool = False  # the upstream lost the session: start a new one and replay the turns
    next_turn: bool = False  # this turn is done: move to the next one (or finish the job)
    cancel_render: str | None = None  # an upstream render to cancel after commit
    note: str = ""  # one log line's worth of what happened
    light: bool = False  # nothing but the turn's render figures changed: written with two plain UPDATEs

    @classmethod
    def advance(cls, stage: str = NEXT, **kwargs: Any) -> Outcome:
        return cls(next_stage=stage, **kwargs)

    @classmethod
    def again(cls, delay: float, note: str, **kwargs: Any) -> Outcome:
        return cls(next_stage=None, countdown=delay, retry=True, note=note, **kwargs)

    @classmethod
    def fail(cls, code: str, message: str, **kwargs: Any) -> Outcome:
        return cls(status=JobStatus.failed, error=(code, message), note=f"failed: {code}", **kwargs)

    @classmethod
    def canceled(cls, render_id: str | None = None) -> Outcome:
        return cls(
            status=JobStatus.canceled,
            error=("canceled", "canceled by the client"),
            cancel_render=render_id,
            note="canceled",
        )

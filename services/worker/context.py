"""What a step sees: a detached snapshot of the job and its turns, the upstream client, and two ways to write
before the step ends (a checkpoint that must land before an upstream call, and live events)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.worker import statements
from services.worker.outcome import Cancel, Throttle
from shared.db import session_scope
from shared.domain.priority import DEADLINE_MESSAGE
from shared.domain.transitions import job_event
from shared.nemo.client import NemoClient
from shared.nemo.profiles import SkillProfile, get_profile
from shared.pace import Limiter
from shared.settings import Settings
from shared.tables import Job, JobTurn
from shared.timeutil import as_utc, utcnow


class LeaseLost(RuntimeError):
    """Another worker owns this job now (our lease ran out): stop without writing anything."""


@dataclass
class StepContext:
    job: Job
    turns: list[JobTurn]
    owner: str
    client: NemoClient
    settings: Settings
    is_canceled: Callable[[str], bool] = field(default=lambda job_id: False)
    live_sink: Callable[[Job, str, dict[str, Any]], None] | None = None  # buffers live events (the event loop)
    pace: Limiter | None = None  # the credential's pace (slots for streams and renders); None: unpaced

    def hold(self, resource: str, ttl_s: float) -> Throttle | None:
        """Take a slot of ``resource`` (streams, renders) for this job; the Throttle to return when there is none."""
        if self.pace is None:
            return None
        grant = self.pace.acquire(resource, self.job.id, ttl_s, behind_line=True)  # no overtaking the line
        if grant:
            return None
        wait = None if grant.reason == "full" else grant.retry_after_s  # full: wait for the scheduler's grant
        return Throttle(resource, wait_s=wait, reason=f"waiting for NemoVideo capacity ({resource}: {grant.reason})")

    def canceled(self) -> Cancel:
        """The job's cancel: by its deadline once that has passed, else by its client; with the render to cancel
        upstream when one is running."""
        turn = self.turn
        render_id = turn.render_id if turn.render_submitted and not turn.output else None
        deadline = as_utc(self.job.deadline_at)
        if deadline is not None and deadline <= utcnow():
            return Cancel(render_id, code="deadline", message=DEADLINE_MESSAGE)
        return Cancel(render_id)

    def let_go(self, resource: str) -> None:
        if self.pace is not None:
            self.pace.release(resource, self.job.id)

    @property
    def turn(self) -> JobTurn:
        return self.turns[self.job.turn_index]

    @property
    def profile(self) -> SkillProfile:
        return get_profile(self.job.profile)

    @property
    def is_last_turn(self) -> bool:
        return self.job.turn_index >= len(self.turns) - 1

    def checkpoint(self, **turn_fields: Any) -> None:
        """Write fields of the current turn now (e.g. a render id before the render is submitted): one UPDATE that
        only lands while this worker still holds the job's lease for this step."""
        where = {"w_id": self.turn.id, "w_job": self.job.id, "w_owner": self.owner, "w_seq": self.job.step_seq}
        with session_scope() as session:
            written = session.execute(
                statements.turn_checkpoint(tuple(turn_fields)), where | statements.set_params(turn_fields)
            ).rowcount
        if written != 1:
            raise LeaseLost(self.job.id)
        for name, value in turn_fields.items():
            setattr(self.turn, name, value)

    def live(self, type: str, data: dict[str, Any]) -> None:
        """Emit a live-only event (a backend text, "still working") while the step runs."""
        if self.live_sink is not None:
            self.live_sink(self.job, type, data)
            return
        with session_scope() as session:
            job_event(session, self.job, type, data)

    def cancel_requested(self) -> bool:
        return self.is_canceled(self.job.id)

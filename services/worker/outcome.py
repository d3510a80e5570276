"""What a step returns: one of a few explicit cases. services/worker/flow.py decides what each means for the job.

Advance      the step did its work: write its fields, go on (to the next stage of the turn, or a named one)
RetryAfter   try the same stage again after a delay (a transient failure spends an attempt; a wait does not)
Throttle     NemoVideo has no capacity for this call now: wait in the database, spending nothing
NewSession   the upstream lost the session: start a new one and replay the turns so far
NextTurn     this turn is done; the job goes on with its next turn
Finish       the job's last turn is done: the job succeeded
Fail         the job failed with a code and the message a user should read
Cancel       the client canceled the job (or its deadline passed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.tables import Stage

Fields = dict[str, Any]


@dataclass(frozen=True)
class Advance:
    turn: Fields = field(default_factory=dict)  # fields of the current turn to write
    job: Fields = field(default_factory=dict)  # fields of the job to write
    stage: Stage | None = None  # None: the next stage on the turn's path
    wait_s: float = 0.0  # run that stage after this long (a render poll)
    note: str = ""


@dataclass(frozen=True)
class RetryAfter:
    delay_s: float
    reason: str
    spend: bool = True  # a transient failure counts against the attempt budget; waiting for something does not
    turn: Fields = field(default_factory=dict)  # fields to write all the same (e.g. "the message was not sent")
    job: Fields = field(default_factory=dict)


@dataclass(frozen=True)
class Throttle:
    resource: str  # what NemoVideo has no room for: "streams", "renders" or "calls"
    wait_s: float | None = None  # a known wait (a 429's pause); None: until capacity is granted
    reason: str = "waiting for NemoVideo capacity"
    turn: Fields = field(default_factory=dict)


@dataclass(frozen=True)
class NewSession:
    reason: str = "the upstream lost the session"


@dataclass(frozen=True)
class NextTurn:
    turn: Fields = field(default_factory=dict)
    job: Fields = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Finish:
    turn: Fields = field(default_factory=dict)
    job: Fields = field(default_factory=dict)
    note: str = "succeeded"


@dataclass(frozen=True)
class Fail:
    code: str
    message: str
    turn: Fields = field(default_factory=dict)


@dataclass(frozen=True)
class Cancel:
    render_id: str | None = None  # an upstream render to cancel once the job is written canceled
    code: str = "canceled"
    message: str = "canceled by the client"


Outcome = Advance | RetryAfter | Throttle | NewSession | NextTurn | Finish | Fail | Cancel


def describe(outcome: Outcome) -> str:
    """One log line's worth of an outcome."""
    match outcome:
        case Advance(note=note) | NextTurn(note=note) | Finish(note=note):
            return note or type(outcome).__name__.lower()
        case RetryAfter(reason=reason, delay_s=delay):
            return f"retry in {delay:.1f} s: {reason}"
        case Throttle(resource=resource, reason=reason):
            return f"throttled ({resource}): {reason}"
        case NewSession(reason=reason):
            return f"new session: {reason}"
        case Fail(code=code):
            return f"failed: {code}"
        case Cancel(code=code):
            return code
    raise TypeError(f"not an outcome: {outcome!r}")

"""The limiter's answer: granted, or refused with a reason and a hint of when to ask again."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    OK = "ok"  # granted now
    HELD = "held"  # granted: the holder already held a slot (its expiry was extended)
    FULL = "full"  # every slot of the resource is taken (under its effective cap)
    RATE = "rate"  # the call rate of the credential or of the class says wait
    PAUSED = "paused"  # the class is paused after a 429
    REBUILDING = "rebuilding"  # the state is missing and being rebuilt from the database
    UNAVAILABLE = "unavailable"  # Redis cannot be reached


@dataclass(frozen=True)
class Grant:
    """Truthy when granted. ``retry_after_s`` is 0.0 when granted, else a hint (seconds) for asking again:
    exact for ``rate`` and ``paused``, a bound for ``full`` (the earliest expiry, at most ``busy_retry_s``)."""

    granted: bool
    retry_after_s: float = 0.0
    reason: Reason = Reason.OK

    def __bool__(self) -> bool:
        return self.granted

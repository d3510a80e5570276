"""When to try a webhook delivery again.

The Standard Webhooks schedule: the first attempt at once, then retries 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
10 h after the previous failure (8 attempts in all, about 28 hours), each delay with ±20% jitter and multiplied by
`webhook_schedule_scale` (tests run the whole schedule in under a minute).

`Retry-After` (delta seconds or an HTTP date) is honoured when it asks for a longer wait than the schedule, never
a shorter one, and is capped at the longest step so a receiver cannot park a delivery for ever. It is the
receiver's own clock, so it is not scaled. It does not add attempts: the retry still counts against the schedule.
"""

from __future__ import annotations

import random
from datetime import datetime

from shared.retry_after import parse_retry_after

SCHEDULE_S: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(SCHEDULE_S)
JITTER = 0.2
RETRY_AFTER_MAX_S = max(SCHEDULE_S)


def scheduled_delay(attempts_done: int, *, scale: float = 1.0, rng: random.Random | None = None) -> float | None:
    """Seconds to wait before the next attempt, after ``attempts_done`` failed ones; None once they are all spent."""
    if attempts_done >= MAX_ATTEMPTS:
        return None
    base = SCHEDULE_S[max(attempts_done, 0)] * scale
    spread = (rng or random).uniform(-JITTER, JITTER)
    return max(0.0, base * (1.0 + spread))


def next_delay(
    attempts_done: int,
    retry_after: str | None = None,
    *,
    scale: float = 1.0,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> float | None:
    """The wait before the next attempt, Retry-After included; None when the schedule is exhausted."""
    delay = scheduled_delay(attempts_done, scale=scale, rng=rng)
    if delay is None:
        return None
    asked = parse_retry_after(retry_after, now=now)
    if asked is not None:
        delay = max(delay, min(asked, RETRY_AFTER_MAX_S))
    return delay

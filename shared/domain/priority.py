"""Priorities and deadlines, as clients write them and as the scheduler orders by them.

`priority`: `high`, `normal` (the default) or `low`, on a job or a batch; stored as 0, 1, 2 so that ordering by
the column puts high first. Within a tenant's share of NemoVideo's capacity, higher priority starts first, then
older.

A deadline: `Cancel-After` on `POST /v1/jobs` (or `cancel_after` on a batch), a duration from creation: `90`
(seconds), `90s`, `15m`, `2h`, `1h30m`. A job not finished by then is canceled (`error.code = "deadline"`); one
that never started costs nothing.
"""

from __future__ import annotations

import re

from shared.domain.errors import ValidationFailed

PRIORITIES = {"high": 0, "normal": 1, "low": 2}
NAMES = {rank: name for name, rank in PRIORITIES.items()}
MAX_CANCEL_AFTER_S = 30 * 24 * 3600.0
DEADLINE_MESSAGE = "the job's deadline (Cancel-After) passed before it finished"
_DURATION = re.compile(r"(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,9}(?:\.\d{1,3})?)s?)?")


def priority_rank(value: str | None, *, field: str = "priority") -> int:
    if value is None or value == "":
        return PRIORITIES["normal"]
    rank = PRIORITIES.get(str(value).strip().lower())
    if rank is None:
        raise ValidationFailed(f"{field} must be one of {', '.join(PRIORITIES)}", field=field)
    return rank


def priority_name(rank: int) -> str:
    return NAMES.get(rank, "normal")


def cancel_after_s(value: str | None, *, field: str = "Cancel-After") -> float | None:
    """Seconds from creation, or None when not given; a clear 400 naming ``field`` for anything else."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip().lower()
    match = _DURATION.fullmatch(text) if len(text) <= 40 else None
    if match is None or not any(match.groups()):
        raise ValidationFailed(f"{field} must be a duration such as 90, 90s, 15m, 2h or 1h30m", field=field)
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 0 < total <= MAX_CANCEL_AFTER_S:
        raise ValidationFailed(f"{field} must be more than 0 and at most 30 days", field=field)
    return total

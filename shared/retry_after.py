"""`Retry-After`, read once for everything reelmill calls: NemoVideo's 429s and 503s, webhook receivers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_SECONDS = re.compile(r"\d{1,30}(?:\.\d{1,9})?")  # bounded: no 5,000-digit number reaches float()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``now``: delta seconds (a fraction is accepted: some servers send one) or an HTTP
    date (a date past is 0). None when absent or unreadable (a negative number, words, a date without a zone)."""
    if not value:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

"""The retry schedule: Standard Webhooks delays, ±20% jitter, scaling, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from shared.webhooks.schedule import MAX_ATTEMPTS, SCHEDULE_S, next_delay, parse_retry_after, scheduled_delay

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_the_schedule() -> None:
    assert SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert MAX_ATTEMPTS == 8
    rng = random.Random(7)
    for done in range(1, MAX_ATTEMPTS):
        for _ in range(200):
            delay = scheduled_delay(done, rng=rng)
            assert delay is not None
            assert SCHEDULE_S[done] * 0.8 <= delay <= SCHEDULE_S[done] * 1.2
    assert scheduled_delay(MAX_ATTEMPTS) is None


def test_jitter_spreads_and_scale_shrinks() -> None:
    rng = random.Random(1)
    delays = {round(scheduled_delay(2, rng=rng) or 0, 3) for _ in range(50)}
    assert len(delays) > 40  # not all the same
    scaled = scheduled_delay(6, scale=0.001, rng=rng) or 0
    assert 36000 * 0.001 * 0.8 <= scaled <= 36000 * 0.001 * 1.2


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(date, now=NOW) == 90.0
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), now=NOW) == 0.0
    assert parse_retry_after("1.5") == 1.5  # a fraction, as some servers send
    for junk in (None, "", "soon", "-5", "1e9", "nan", "9" * 5000):
        assert parse_retry_after(junk) is None


def test_retry_after_only_lengthens_and_is_capped() -> None:
    rng = random.Random(3)
    assert next_delay(1, "600", rng=rng) == 600.0  # schedule says ~5 s: the receiver's longer wait wins
    longer = next_delay(2, "1", rng=rng) or 0
    assert 240 <= longer <= 360  # schedule says ~300 s: a shorter Retry-After does not shorten it
    assert next_delay(1, str(10**9), rng=rng) == max(SCHEDULE_S)
    assert next_delay(1, "2", scale=0.001, rng=rng) == 2.0  # the receiver's seconds are not scaled
    assert next_delay(MAX_ATTEMPTS, "5") is None  # Retry-After adds no attempts

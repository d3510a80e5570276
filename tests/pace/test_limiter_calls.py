"""Calls per second: the credential's bucket for every call, and each class's own (AIMD) rate."""

from __future__ import annotations

import time

from shared.pace import Reason
from tests.utils.waiting import wait_until


def test_second_call_waits_one_interval(limiter_for) -> None:
    limiter = limiter_for(rps=4)
    assert limiter.take("call") == 0.0
    wait = limiter.take("call")
    assert 0 < wait <= 0.25
    refused = limiter.take_grant("call")
    assert not refused and refused.reason is Reason.RATE


def test_all_classes_share_the_credential_rate(limiter_for) -> None:
    limiter = limiter_for(rps=2)
    assert limiter.take("stream") == 0.0
    assert 0 < limiter.take("call") <= 0.5  # another class, same credential: it waits too


def test_a_halved_class_waits_twice_as_long(limiter_for) -> None:
    limiter = limiter_for(rps=1, min_rps=0.1)
    limiter.penalize("call", 1.0)
    wait_until(lambda: limiter.pause_remaining("call") == 0.0)
    assert limiter.snapshot().rates["call"] == 0.5
    assert limiter.take("call") == 0.0
    started = time.monotonic()
    wait = limiter.take("call")
    elapsed = time.monotonic() - started
    assert 2.0 - elapsed - 0.05 <= wait <= 2.0  # the class's own interval (2 s), not the credential's (1 s)


def test_a_waiting_caller_goes_when_told(limiter_for) -> None:
    limiter = limiter_for(rps=10)
    assert limiter.take("call") == 0.0
    wait = limiter.take("call")
    time.sleep(wait)  # the hint is exact: asking again after it succeeds
    assert limiter.take("call") == 0.0
    assert limiter.snapshot().throttled["call"] == 1

"""AIMD: a 429 pauses its class and halves its rate (and its resource's cap); successes raise them additively."""

from __future__ import annotations

import math

import pytest

from shared.pace import Reason
from tests.utils.waiting import wait_until


def _rewards_until_change(limiter, cls: str, read) -> tuple[int, float]:
    before = read()
    for n in range(1, 1000):
        limiter.reward(cls)
        if read() != before:
            return n, read()
    raise AssertionError("no change after 1000 successes")


def test_429_pauses_the_class_and_halves_once_per_pause(limiter_for) -> None:
    limiter = limiter_for(rps=8, min_rps=0.5)
    assert limiter.penalize("call", 2.0) == pytest.approx(2.0)
    snap = limiter.snapshot()
    assert snap.rates["call"] == 4.0 and snap.rates["stream"] == 8.0  # only that class
    assert 0 < snap.pause_remaining["call"] <= 2.0 and snap.pause_remaining["stream"] == 0.0
    refused = limiter.take_grant("call")
    assert not refused and refused.reason is Reason.PAUSED and 0 < refused.retry_after_s <= 2.0
    assert limiter.take("stream") == 0.0  # another class keeps calling

    limiter.penalize("call", 3.0)  # the rest of the same storm: the pause grows, the rate is not cut again
    snap = limiter.snapshot()
    assert snap.rates["call"] == 4.0 and snap.rate_limited["call"] == 2 and snap.pause_remaining["call"] > 2.0


def test_a_later_429_halves_again_down_to_the_floor(limiter_for) -> None:
    limiter = limiter_for(rps=4, min_rps=1.5)
    limiter.penalize("call", 1.0)
    wait_until(lambda: limiter.pause_remaining("call") == 0.0)
    limiter.penalize("call", 1.0)
    assert limiter.snapshot().rates["call"] == 1.5  # 4 -> 2 -> max(1, floor 1.5)


def test_429_on_streams_halves_the_cap_never_below_one(limiter_for) -> None:
    limiter = limiter_for(max_streams=5)
    limiter.penalize("stream", 1.0)
    assert limiter.snapshot().caps == {"streams": 2, "renders": 5}
    refused = limiter.acquire("streams", "a", 30)
    assert not refused and refused.reason is Reason.PAUSED  # no new stream while the class is paused
    wait_until(lambda: limiter.pause_remaining("stream") == 0.0)
    assert limiter.acquire("streams", "a", 30) and limiter.acquire("streams", "b", 30)
    assert limiter.acquire("streams", "c", 30).reason is Reason.FULL  # the effective cap, not the setting
    for _ in range(3):
        limiter.penalize("stream", 1.0)
        wait_until(lambda: limiter.pause_remaining("stream") == 0.0)
    assert limiter.snapshot().caps["streams"] == 1
    assert limiter.snapshot().in_flight["streams"] == 2  # holders keep their slots; new ones wait


def test_rate_recovers_additively_up_to_the_setting(limiter_for) -> None:
    limiter = limiter_for(rps=8, min_rps=0.5, rps_step=1.0, recover_s=0.5)
    limiter.penalize("call", 1.0)
    assert limiter.reward("call") is False  # no recovery during the pause
    wait_until(lambda: limiter.pause_remaining("call") == 0.0)
    rate = limiter.snapshot().rates["call"]
    assert rate == 4.0
    while rate < 8.0:
        needed, new_rate = _rewards_until_change(limiter, "call", lambda: limiter.snapshot().rates["call"])
        assert new_rate == rate + 1.0  # additive: one step, not a factor
        assert needed == math.ceil(rate * 0.5)  # a window: recover_s worth of calls at the current rate
        rate = new_rate
    for _ in range(20):
        limiter.reward("call")
    assert limiter.snapshot().rates["call"] == 8.0


def test_cap_recovers_by_one_per_window_of_successes(limiter_for) -> None:
    limiter = limiter_for(max_renders=8)
    limiter.penalize("render", 1.0)
    wait_until(lambda: limiter.pause_remaining("render") == 0.0)
    cap = limiter.snapshot().caps["renders"]
    assert cap == 4
    while cap < 8:
        needed, new_cap = _rewards_until_change(limiter, "render", lambda: limiter.snapshot().caps["renders"])
        assert new_cap == cap + 1 and needed == cap
        cap = new_cap
    for _ in range(20):
        limiter.reward("render")
    assert limiter.snapshot().caps["renders"] == 8


def test_a_zero_retry_after_still_pauses_a_second(limiter_for) -> None:
    limiter = limiter_for(rps=8)
    assert limiter.penalize("call", 0.0) == pytest.approx(1.0)
    assert limiter.penalize("call", None) > 1.0  # no Retry-After: the configured default (30 s here)

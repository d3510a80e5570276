"""The suite's waiting helper for long runs: a stall fails fast, steady progress is waited for."""

from __future__ import annotations

import itertools

import pytest

from tests.utils.waiting import wait_while_progressing


def test_waits_past_the_stall_time_while_progress_moves() -> None:
    ticks = itertools.count()
    polls = iter(range(1_000))
    got = wait_while_progressing(lambda: next(polls) >= 12 and "done", lambda: next(ticks), stall=0.05, every=0.01)
    assert got == "done"


def test_fails_when_nothing_moves() -> None:
    with pytest.raises(pytest.fail.Exception, match="no progress for 0 s waiting for the batch"):
        wait_while_progressing(lambda: None, lambda: "same", stall=0.1, every=0.01, what="the batch")


def test_fails_at_the_cap_even_while_moving() -> None:
    ticks = itertools.count()
    with pytest.raises(pytest.fail.Exception, match="still moving"):
        wait_while_progressing(lambda: None, lambda: next(ticks), stall=10, cap=0.1, every=0.01)

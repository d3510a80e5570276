"""Waiting for a condition, the one way tests do it: poll until it holds, fail with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 60.0, what: str = "the condition", every: float = 0.05
) -> T:
    """The first truthy value of ``condition()``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def holds_within(condition: Callable[[], object], timeout: float, every: float = 0.05) -> bool:
    """Whether ``condition()`` became truthy within ``timeout`` seconds (for a test that goes on either way)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def wait_while_progressing(
    condition: Callable[[], T],
    progress: Callable[[], object],
    stall: float = 60.0,
    cap: float = 900.0,
    what: str = "the condition",
    every: float = 0.25,
) -> T:
    """The first truthy value of ``condition()``, waiting as long as ``progress()`` keeps changing.

    For long runs whose length depends on the machine's load (a 1,000-job batch beside other test processes):
    the test fails when nothing moved for ``stall`` seconds, or after ``cap`` seconds in all, not at a fixed
    deadline a slower machine misses while the work is still going forward.
    """
    start = moved = time.monotonic()
    seen = progress()
    while True:
        value = condition()
        if value:
            return value
        now = time.monotonic()
        current = progress()
        if current != seen:
            seen, moved = current, now
        if now - moved > stall:
            pytest.fail(f"no progress for {stall:.0f} s waiting for {what}; last seen: {current}")
        if now - start > cap:
            pytest.fail(f"timed out after {cap:.0f} s waiting for {what} (still moving); last seen: {current}")
        time.sleep(every)

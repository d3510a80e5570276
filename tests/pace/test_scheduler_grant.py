"""The scheduler's capacity round (services/worker/scheduler.py `grant`): while every slot is taken it marks the
line and asks the database nothing (a busy credential spends most rounds full); with room it counts who waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.worker import scheduler
from shared.pace import Limiter
from shared.pace.fair import Demand
from shared.tables import Stage


@pytest.fixture()
def pace(limiter_for: Callable[..., Limiter], monkeypatch: pytest.MonkeyPatch) -> Limiter:
    limiter = limiter_for(max_streams=1)
    monkeypatch.setattr(scheduler, "get_pace", lambda: limiter)
    monkeypatch.setattr(scheduler, "_lines", set())  # this process's record of marked lines, the test's own
    return limiter


def test_a_full_credential_marks_the_line_without_counting_waiters(pace: Limiter, monkeypatch) -> None:
    assert pace.acquire("streams", "holder", 30)

    def counted(*_: Any) -> list[Demand]:
        raise AssertionError("the waiters were counted while no slot was free")

    monkeypatch.setattr(scheduler, "_throttled_demands", counted)
    assert scheduler.grant("streams", Stage.message) == 0
    assert not pace.acquire("streams", "newcomer", 30, behind_line=True), "the line is marked"


def test_with_room_and_nobody_left_waiting_the_line_is_cleared(pace: Limiter, monkeypatch) -> None:
    scheduler.mark_line("streams", True)
    asked: list[Stage] = []
    monkeypatch.setattr(scheduler, "_throttled_demands", lambda session, stage: asked.append(stage) or [])
    assert scheduler.grant("streams", Stage.message) == 0
    assert asked == [Stage.message]
    assert pace.acquire("streams", "newcomer", 30, behind_line=True), "no line: the free slot is taken"

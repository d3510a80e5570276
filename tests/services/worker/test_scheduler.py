"""The scheduler's arithmetic (services/worker/scheduler.py), without a database: who starts, and how many."""

from __future__ import annotations

from services.worker.scheduler import _admission_plan, _share_out


def test_everyone_fits_while_the_window_has_room():
    plan = _admission_plan(20, {}, {"a": 5, "b": 3}, {})
    assert plan == {"a": 5, "b": 3}


def test_a_newcomer_starts_its_share_at_once_behind_a_full_window():
    # tenant a already fills the window of 20; b arrives with 20 jobs: b may start its half at once
    plan = _admission_plan(20, {"a": 20}, {"a": 1980, "b": 20}, {})
    assert plan == {"b": 10}


def test_shares_follow_weights_and_caps():
    limits = {"a": (3, None), "b": (1, 2)}
    plan = _admission_plan(40, {}, {"a": 100, "b": 100}, limits)
    assert plan["b"] == 2, "b's own cap"
    assert plan["a"] == 38, "a's share, then the room b cannot use"


def test_room_beyond_the_shares_is_shared_out():
    plan = _admission_plan(10, {"a": 2}, {"a": 50, "b": 1}, {})
    assert plan["b"] == 1 and plan["a"] == 7 and sum(plan.values()) == 10 - 2


def test_within_a_tenant_higher_priority_first_then_flows_take_turns():
    flows = [("bat_big", 1, "job_1", 40), (None, 1, "job_5", 3), ("bat_hi", 0, "job_9", 2)]
    assert _share_out(6, flows) == {"bat_hi": 2, "bat_big": 2, None: 2}
    assert _share_out(3, flows) == {"bat_hi": 2, "bat_big": 1}


def test_a_batch_never_beyond_its_room():
    assert _share_out(10, [("bat_a", 1, "job_1", 2)]) == {"bat_a": 2}

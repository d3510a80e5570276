"""Slots of a held resource: the cap, idempotent acquire, renew, release, and expiry freeing a dead holder's slot."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from shared.pace import Reason
from tests.pace import helpers
from tests.utils.waiting import wait_until


def test_cap_holds_and_release_frees(limiter_for) -> None:
    limiter = limiter_for(max_streams=2)
    assert limiter.acquire("streams", "a", 30)
    assert limiter.acquire("streams", "b", 30)
    refused = limiter.acquire("streams", "c", 30)
    assert not refused and refused.reason is Reason.FULL and 0 < refused.retry_after_s <= 2.0
    assert limiter.in_flight("streams") == 2
    assert limiter.release("streams", "a") == 1
    assert limiter.release("streams", "a") == 0  # releasing twice is harmless
    assert limiter.acquire("streams", "c", 30)
    assert set(limiter.holders("streams")) == {"b", "c"}


def test_room_is_what_a_dispatcher_may_hand_out(limiter_for) -> None:
    limiter = limiter_for(max_streams=3, rebuild=lambda cred: {"streams": {"x": time.time() + 60}})
    assert limiter.room("streams") == 2  # the state is built from the engine's view first
    assert limiter.acquire("streams", "a", 30)
    assert limiter.room("streams") == 1 and limiter.room("renders") == 5
    limiter.penalize("stream", 5.0)
    assert limiter.room("streams") == 0 and limiter.room("renders") == 5


def test_resources_have_their_own_caps(limiter_for) -> None:
    limiter = limiter_for(max_streams=1, max_renders=2)
    assert limiter.acquire("streams", "job1", 30)
    assert limiter.acquire("renders", "job1", 30)  # one job may hold both
    assert limiter.acquire("renders", "job2", 30)
    assert not limiter.acquire("renders", "job3", 30)
    assert not limiter.acquire("streams", "job2", 30)


def test_acquire_is_idempotent_for_a_holder(limiter_for) -> None:
    limiter = limiter_for(max_streams=1)
    first = limiter.acquire("streams", "a", 5)
    again = limiter.acquire("streams", "a", 60)  # a step re-run after a crash: same slot, longer expiry
    assert first.reason is Reason.OK and again and again.reason is Reason.HELD
    assert limiter.in_flight("streams") == 1
    assert limiter.holders("streams")["a"] > time.time() + 30


def test_renew_extends_many_and_reports_the_lost(limiter_for) -> None:
    limiter = limiter_for(max_streams=5)
    for holder in ("a", "b"):
        assert limiter.acquire("streams", holder, 1)
    lost = limiter.renew("streams", ["a", "b", "never-held"], 120)
    assert lost == ["never-held"]
    expiries = limiter.holders("streams")
    assert min(expiries.values()) > time.time() + 100
    assert limiter.renew("streams", [], 10) == []


def test_expiry_frees_the_slot_and_renew_then_reports_it_lost(limiter_for) -> None:
    limiter = limiter_for(max_streams=1)
    assert limiter.acquire("streams", "stalled", 0.3)
    refused = limiter.acquire("streams", "next", 30)
    assert not refused and refused.retry_after_s <= 0.3  # the hint is the earliest expiry
    wait_until(lambda: limiter.acquire("streams", "next", 30))
    assert set(limiter.holders("streams")) == {"next"}
    assert limiter.renew("streams", ["stalled"], 30) == ["stalled"]  # too late: the slot went to another job


def test_a_dead_workers_slot_frees_itself(client, credential, redis_url, limiter_for) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    worker = ctx.Process(target=helpers.hold_and_hang, args=(redis_url, credential, 1.0, ready), daemon=True)
    worker.start()
    try:
        assert ready.wait(30), "the worker did not get its slot"
        worker.kill()  # it dies holding the slot, without a release
        worker.join(10)
        limiter = limiter_for(max_streams=1)
        assert limiter.holders("streams").keys() == {"dead-worker-job"}
        assert not limiter.acquire("streams", "survivor", 30)
        wait_until(lambda: limiter.acquire("streams", "survivor", 30))
        assert limiter.holders("streams").keys() == {"survivor"}
    finally:
        if worker.is_alive():
            worker.kill()


def test_bad_arguments_are_refused_by_name(limiter_for) -> None:
    limiter = limiter_for()
    with pytest.raises(ValueError, match="unknown resource"):
        limiter.acquire("stream", "a", 10)
    with pytest.raises(ValueError, match="ttl_s"):
        limiter.acquire("streams", "a", 0)
    with pytest.raises(ValueError, match="unknown call class"):
        limiter.take("streams")
    with pytest.raises(ValueError, match="looks like a token"):
        type(limiter)(limiter.client, "nmv_abcdef123456", limiter.config)


def test_a_newcomer_joins_the_line_instead_of_overtaking_it(limiter_for) -> None:
    limiter = limiter_for(max_streams=2)
    assert limiter.acquire("streams", "granted-earlier", 30, behind_line=True)
    limiter.mark_line("streams", True, 0.5)  # the scheduler: jobs wait for a grant
    refused = limiter.acquire("streams", "newcomer", 30, behind_line=True)
    assert not refused and refused.reason is Reason.FULL, "a free slot, but others wait: join the line"
    assert limiter.acquire("streams", "granted-earlier", 30, behind_line=True), "a holder keeps its slot"
    assert limiter.acquire("streams", "scheduled", 30), "the scheduler's own grant passes"
    limiter.release("streams", "scheduled")
    limiter.mark_line("streams", False, 0.5)
    assert limiter.acquire("streams", "newcomer", 30, behind_line=True), "no line: a free slot is taken"


def test_a_line_no_scheduler_renews_runs_out(limiter_for) -> None:
    limiter = limiter_for(max_streams=2)
    limiter.mark_line("streams", True, 0.3)
    assert not limiter.acquire("streams", "newcomer", 30, behind_line=True)
    wait_until(lambda: bool(limiter.acquire("streams", "newcomer", 30, behind_line=True)), timeout=5)

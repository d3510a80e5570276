"""After a flush the state is rebuilt from the engine's view before anything is granted, never over the cap."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from shared.pace import Limiter, PaceConfig, Reason, known_credentials
from tests.pace.helpers import TruthDir


def test_flush_rebuilds_from_the_view_before_granting(private_redis, tmp_path) -> None:
    truth = TruthDir(tmp_path)
    client = private_redis.client()
    limiter = Limiter(client, "default", PaceConfig(max_streams=3, max_renders=1), rebuild=truth.view)
    for holder in ("a", "b", "c"):
        truth.hold("streams", holder, 60)
        assert limiter.acquire("streams", holder, 60)
    truth.hold("renders", "a", 60)
    assert limiter.acquire("renders", "a", 60)

    client.flushall()
    assert limiter.snapshot().ready is False
    refused = limiter.acquire("streams", "d", 60)  # rebuilt first: the three are back, no room for d
    assert not refused and refused.reason is Reason.FULL
    assert set(limiter.holders("streams")) == {"a", "b", "c"} and set(limiter.holders("renders")) == {"a"}
    assert limiter.snapshot().ready is True
    assert known_credentials(client) == ["default"]

    assert limiter.release("streams", "b") == 1
    truth.drop("streams", "b")
    assert limiter.acquire("streams", "d", 60)


def test_expired_holders_in_the_view_are_not_restored(private_redis) -> None:
    lease_end = datetime.now(UTC) + timedelta(seconds=60)  # a lease column works as well as epoch seconds
    view = {"streams": {"gone": time.time() - 5, "live": lease_end}}
    limiter = Limiter(private_redis.client(), "default", PaceConfig(max_streams=2), rebuild=lambda cred: view)
    assert limiter.acquire("streams", "new", 30)
    assert set(limiter.holders("streams")) == {"live", "new"}


def test_a_view_over_the_cap_grants_nothing_until_it_drains(private_redis) -> None:
    view = {"streams": {f"j{i}": time.time() + 60 for i in range(4)}}
    limiter = Limiter(private_redis.client(), "default", PaceConfig(max_streams=2), rebuild=lambda cred: view)
    assert limiter.acquire("streams", "new", 30).reason is Reason.FULL
    limiter.release("streams", "j0", "j1")
    assert limiter.acquire("streams", "new", 30).reason is Reason.FULL  # still 2 of 2
    limiter.release("streams", "j2")
    assert limiter.acquire("streams", "new", 30)


def test_a_release_during_the_outage_is_not_restored(private_redis, tmp_path) -> None:
    truth = TruthDir(tmp_path)
    client = private_redis.client()
    limiter = Limiter(client, "default", PaceConfig(max_streams=1), rebuild=truth.view)
    truth.hold("streams", "a", 60)
    assert limiter.acquire("streams", "a", 60)
    client.flushall()
    limiter.release("streams", "a")  # the job ended; its row still says streaming when the rebuild reads it
    assert limiter.acquire("streams", "b", 60)
    assert set(limiter.holders("streams")) == {"b"}


def test_without_a_callback_or_with_a_failing_one_nothing_is_granted(private_redis) -> None:
    client = private_redis.client()
    bare = Limiter(client, "default", PaceConfig())
    refused = bare.acquire("streams", "a", 30)
    assert not refused and refused.reason is Reason.REBUILDING
    assert bare.renew("streams", ["a"], 30) == []  # unknown, not lost

    def broken(cred: str) -> dict:
        raise RuntimeError("database down")

    failing = Limiter(client, "default", PaceConfig(), rebuild=broken)
    assert failing.acquire("streams", "a", 30).reason is Reason.REBUILDING
    assert not client.exists(failing.keys.rebuild_lock)  # the lock was given back
    working = Limiter(client, "default", PaceConfig(), rebuild=lambda cred: {})
    assert working.acquire("streams", "a", 30)


def test_others_are_refused_while_one_rebuilds(private_redis) -> None:
    entered, proceed = threading.Event(), threading.Event()
    view = {"streams": {"x": time.time() + 60}}

    def slow(cred: str) -> dict:
        entered.set()
        assert proceed.wait(20)
        return view

    first = Limiter(private_redis.client(), "default", PaceConfig(max_streams=2), rebuild=slow)
    second = Limiter(private_redis.client(), "default", PaceConfig(max_streams=2), rebuild=lambda cred: {})
    results = {}
    thread = threading.Thread(target=lambda: results.setdefault("first", first.acquire("streams", "a", 30)))
    thread.start()
    assert entered.wait(20)
    during = [second.acquire("streams", f"b{i}", 30) for i in range(3)]
    assert all(g.reason is Reason.REBUILDING for g in during)  # refused, not granted over what x will take
    proceed.set()
    thread.join(20)
    assert results["first"]
    assert second.acquire("streams", "b0", 30).reason is Reason.FULL  # x and a hold both slots
    assert set(second.holders("streams")) == {"x", "a"}


def test_an_asker_found_in_the_view_counts_once_and_never_over_the_cap(private_redis) -> None:
    # the engine writes "this job is streaming" before it asks, so the rebuild may find the asker itself
    soon = time.time() + 60
    client = private_redis.client()
    over = Limiter(
        client, "default", PaceConfig(max_streams=2), rebuild=lambda c: {"streams": dict.fromkeys("abx", soon)}
    )
    refused = over.acquire("streams", "x", 30)
    assert not refused and refused.reason is Reason.FULL
    assert set(over.holders("streams")) == {"a", "b"}  # x asked, was refused, and holds nothing

    client.flushall()
    room = Limiter(
        client, "default", PaceConfig(max_streams=2), rebuild=lambda c: {"streams": dict.fromkeys("ax", soon)}
    )
    grant = room.acquire("streams", "x", 30)
    assert grant and grant.reason is Reason.HELD
    assert set(room.holders("streams")) == {"a", "x"}


def test_a_holder_asking_again_while_paused_gives_its_slot_back(limiter_for) -> None:
    limiter = limiter_for(max_streams=2)
    assert limiter.acquire("streams", "a", 30)
    limiter.penalize("stream", 5.0)
    assert limiter.acquire("streams", "a", 30).reason is Reason.PAUSED
    assert limiter.holders("streams") == {}

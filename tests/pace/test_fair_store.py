"""The DRR state kept in Redis between dispatcher runs, with a compare-and-set against a racing dispatcher."""

from __future__ import annotations

import uuid

from shared.pace.fair import Demand, DrrState, pick
from shared.pace.fair_store import DrrStore


def test_state_round_trips_and_continues_the_round(client) -> None:
    store = DrrStore(client, scope=uuid.uuid4().hex)
    state, version = store.load()
    assert state == DrrState() and version == 0
    demands = [Demand("a", 9, 9, weight=3), Demand("b", 9, 9)]
    grants, state = pick(demands, 2, state)  # a's visit is cut short: one credit left
    assert grants == ["a", "a"] and state.in_visit
    assert store.save(state, version)
    loaded, version = store.load()
    assert loaded == state and version == 1
    grants, _ = pick(demands, 2, loaded)
    assert grants == ["a", "b"]  # the visit went on from Redis, then b's turn


def test_a_racing_save_loses(client) -> None:
    store = DrrStore(client, scope=uuid.uuid4().hex)
    _, version = store.load()
    assert store.save(DrrState(["a"], {"a": 1}, True), version)
    assert not store.save(DrrState(["b"], {"b": 0}, False), version)  # loaded the same version: refused
    assert store.load()[0].ring == ["a"]


def test_unreadable_state_starts_a_new_round(client) -> None:
    store = DrrStore(client, scope=uuid.uuid4().hex)
    client.hset(store.key, mapping={"v": 4, "ring": "not json", "deficits": "{}"})
    state, version = store.load()
    assert state == DrrState() and version == 4

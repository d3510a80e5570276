"""Deficit round robin over tenants: shares follow weights, nobody with work and room waits over a round, caps
hold, and serving one slot at a time is the same DRR as serving many at once."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pace.fair import Demand, DrrState, check_weight, pick

BIG = 10**9
weights_st = st.lists(st.integers(1, 6), min_size=1, max_size=6)


def _backlogged(weights: list[int]) -> list[Demand]:
    return [Demand(f"t{i}", backlog=BIG, room=BIG, weight=w) for i, w in enumerate(weights)]


@settings(max_examples=60, deadline=None)
@given(weights=weights_st, batch_sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_shares_follow_weights_when_all_are_backlogged(weights: list[int], batch_sizes: list[int]) -> None:
    demands, state, counts, total = _backlogged(weights), DrrState(), Counter[str](), 0
    target = 200 * sum(weights)
    i = 0
    while total < target:
        grants, state = pick(demands, batch_sizes[i % len(batch_sizes)], state)
        counts.update(grants)
        total += len(grants)
        i += 1
    for d in demands:
        share, expected = counts[d.tenant] / total, d.weight / sum(weights)
        assert abs(share - expected) <= 0.02, (d, share, expected)


@settings(max_examples=60, deadline=None)
@given(weights=weights_st, batch_sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_nobody_backlogged_waits_more_than_one_round(weights: list[int], batch_sizes: list[int]) -> None:
    demands, state, order = _backlogged(weights), DrrState(), []
    for i in range(100):
        grants, state = pick(demands, batch_sizes[i % len(batch_sizes)], state)
        order += grants
    total_weight = sum(weights)
    for d in demands:
        seen = [k for k, t in enumerate(order) if t == d.tenant]
        assert seen and seen[0] < total_weight  # served within the first round
        gaps = [b - a - 1 for a, b in itertools.pairwise(seen)]
        assert max(gaps, default=0) <= total_weight - d.weight  # others get at most one round between its turns


@settings(max_examples=100, deadline=None)
@given(
    weights=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    steps=st.lists(
        st.tuples(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=4, max_size=4), st.integers(1, 6)),
        min_size=1,
        max_size=40,
    ),
)
def test_a_tenant_with_work_and_room_waits_at_most_a_round_while_others_come_and_go(
    weights: list[int], steps: list[tuple[list[tuple[int, int]], int]]
) -> None:
    state, order = DrrState(), []
    for others, free in steps:
        demands = [Demand("x", BIG, BIG)]  # always backlogged, never at its cap
        demands += [Demand(f"o{i}", b, r, w) for i, (w, (b, r)) in enumerate(zip(weights, others, strict=False))]
        grants, state = pick(demands, free, state)
        order += grants
    seen = [k for k, t in enumerate(order) if t == "x"]
    assert seen and seen[0] <= 2 * sum(weights)
    gaps = [b - a - 1 for a, b in itertools.pairwise(seen)]
    assert max(gaps, default=0) <= 2 * sum(weights)  # each other tenant: one visit, at most two quanta


demand_st = st.builds(
    Demand,
    tenant=st.sampled_from(["a", "b", "c", "d", "e"]),
    backlog=st.integers(0, 8),
    room=st.integers(0, 8),
    weight=st.integers(1, 4),
)


@settings(max_examples=200, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(st.lists(demand_st, max_size=5, unique_by=lambda d: d.tenant), st.integers(0, 12)),
        min_size=1,
        max_size=12,
    )
)
def test_caps_hold_and_free_slots_are_not_wasted(rounds: list[tuple[list[Demand], int]]) -> None:
    state = DrrState()
    for demands, free in rounds:
        grants, state = pick(demands, free, state)
        counts = Counter(grants)
        for d in demands:
            assert counts[d.tenant] <= min(d.backlog, d.room)  # never more than it has waiting or may start
        assert set(counts) <= {d.tenant for d in demands}
        assert len(grants) == min(free, sum(min(d.backlog, d.room) for d in demands))  # work-conserving
        assert set(state.ring) == {d.tenant for d in demands if d.backlog > 0} - _emptied(demands, counts)
        assert all(0 <= credit <= 2 * _weight(demands, t) for t, credit in state.deficits.items())


def _emptied(demands: list[Demand], counts: Counter) -> set[str]:
    return {d.tenant for d in demands if d.backlog > 0 and counts[d.tenant] == d.backlog}


def _weight(demands: list[Demand], tenant: str) -> int:
    return next(d.weight for d in demands if d.tenant == tenant)


@settings(max_examples=100, deadline=None)
@given(demands=st.lists(demand_st, min_size=1, max_size=5, unique_by=lambda d: d.tenant), free=st.integers(0, 20))
def test_one_slot_at_a_time_is_the_same_drr_as_many_at_once(demands: list[Demand], free: int) -> None:
    together, _ = pick(demands, free, DrrState())
    one_by_one, state, left = [], DrrState(), {d.tenant: d for d in demands}
    for _ in range(free):
        grants, state = pick(list(left.values()), 1, state)
        if not grants:
            break
        one_by_one += grants
        d = left[grants[0]]
        left[d.tenant] = Demand(d.tenant, d.backlog - 1, d.room - 1, d.weight)
    assert one_by_one == together


def test_weighted_round_robin_order() -> None:
    demands = [Demand("a", 10, 10, weight=2), Demand("b", 10, 10), Demand("c", 10, 10)]
    grants, state = pick(demands, 6)
    assert grants == ["a", "a", "b", "c", "a", "a"]
    grants, _ = pick(demands, 3, state)
    assert grants == ["b", "c", "a"]


def test_a_tenant_without_room_is_passed_over_and_others_fill_in() -> None:
    grants, state = pick([Demand("a", 5, 0), Demand("b", 5, 5)], 3)
    assert grants == ["b", "b", "b"]
    assert state.deficits.get("a", 0) == 0  # no credit piles up while it cannot start anything
    grants, _ = pick([Demand("a", 5, 5), Demand("b", 5, 5)], 2, state)
    assert grants.count("a") == 1 and grants.count("b") == 1


def test_a_tenant_whose_backlog_empties_loses_its_credit() -> None:
    _, state = pick([Demand("a", 1, 5, weight=4), Demand("b", 9, 9)], 1)
    assert "a" not in state.ring and "a" not in state.deficits


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_weights_must_be_integers_of_at_least_one(bad: object) -> None:
    with pytest.raises(ValueError, match="weight must be an integer >= 1"):
        check_weight(bad, "acme")
    with pytest.raises(ValueError, match="'acme'"):
        Demand("acme", 1, 1, weight=bad)  # type: ignore[arg-type]


def test_bad_demands_are_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        pick([Demand("a", 1, 1), Demand("a", 2, 2)], 1)
    with pytest.raises(ValueError, match="backlog and room"):
        Demand("a", -1, 1)
    with pytest.raises(ValueError, match="free"):
        pick([], -1)
    assert check_weight(3) == 3

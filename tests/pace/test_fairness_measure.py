"""The fairness benchmark's measure of the scheduler (bench/fairness.py): the slots handed out while every tenant
had a job in line, not the slots held (which carry what was taken before the others asked)."""

from __future__ import annotations

from bench.fairness import shares

TENANTS = {"A": "ta", "B": "tb", "C": "tc"}


def sample(at: float, held: dict[str, int], asking: dict[str, int]) -> dict:
    return {"at": at, "held": held, "backlog": dict.fromkeys(TENANTS.values(), 5), "asking": asking}


def test_counts_only_slots_handed_out_while_all_ask() -> None:
    everyone = dict.fromkeys(TENANTS.values(), 3)
    samples = [
        sample(0.0, {}, {"ta": 5}),  # only A asks: what A takes next is not a choice between tenants
        sample(1.0, {"ta": 4}, everyone),
        sample(2.0, {"ta": 5, "tb": 1, "tc": 1}, everyone),
        sample(3.0, {"ta": 5, "tb": 2, "tc": 2}, {"ta": 3}),
        sample(4.0, {"ta": 6, "tb": 2, "tc": 2}, {}),  # A's start here follows a sample where B and C did not ask
    ]
    first_held = {"a1": 1.0, "a2": 1.0, "a3": 1.0, "a4": 1.0, "a5": 2.0, "b1": 2.0, "c1": 2.0}
    first_held |= {"b2": 3.0, "c2": 3.0, "a6": 4.0}
    jobs = {j: TENANTS[j[0].upper()] for j in first_held}
    res = shares(samples, TENANTS, first_held, jobs, stream_s=10.0)
    assert res["handed_out_while_all_ask"] == {"A": 1, "B": 2, "C": 2}
    assert res["handed_out_max_relative_deviation"] == 0.4  # A: 1/5 against 1/3
    assert res["max_relative_deviation"] > res["handed_out_max_relative_deviation"]  # held: A's early slots count


def test_no_slot_handed_out_while_all_ask_is_not_fair() -> None:
    samples = [sample(0.0, {}, {"ta": 1}), sample(1.0, {"ta": 1}, {"ta": 1})]
    res = shares(samples, TENANTS, {"a1": 1.0}, {"a1": "ta"}, stream_s=10.0)
    assert res["handed_out_while_all_ask"] == {"A": 0, "B": 0, "C": 0}
    assert res["handed_out_max_relative_deviation"] == 1.0

"""Faults armed at a rate, per endpoint or endpoint class, deterministic under the seed; the chaos preset; the
totals of faults fired."""

from __future__ import annotations

import httpx

from services.nemo_sim.faults import FaultBook, FaultSpec
from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin

CREDITS = "/api/credits/balance/simple"


def _statuses(up: Upstream, n: int) -> list[int]:
    return [up.http.get(CREDITS, headers=up.headers()).status_code for _ in range(n)]


def test_rate_is_a_share_and_replays_under_the_seed(sim: SimAdmin, up: Upstream) -> None:
    sim.fault_at_rate(["credits"], "http_500", 0.25)
    first = _statuses(up, 400)
    assert 60 <= first.count(500) <= 140 and set(first) == {200, 500}
    assert sim.faults()[0]["remaining"] is None and sim.faults()[0]["fired"] == first.count(500)
    sim.clear_faults()
    sim.fault_at_rate(["credits"], "http_500", 0.25)
    assert _statuses(up, 400) == first  # the same seed, the same draws
    sim.clear_faults()
    sim.configure(seed=7)
    sim.fault_at_rate(["credits"], "http_500", 0.25)
    assert _statuses(up, 400) != first


def test_rate_with_times_stops_after_that_many(sim: SimAdmin, up: Upstream) -> None:
    sim.fault_at_rate("all", "http_503", 0.5, times=3)
    assert _statuses(up, 60).count(503) == 3 and sim.faults() == []


def test_a_class_reaches_only_where_the_kind_applies(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault_at_rate("all", "session_lost", 1.0)
    assert up.credits_reply().status_code == 200  # credits names no session
    assert up.state(sid).json()["code"] == 1002
    assert up.send(sid, "hi").status_code == 404
    sim.clear_faults()
    sim.fault_at_rate("retryable", "token_expired", 1.0)
    minted = httpx.post(f"{sim.base_url}/api/auth/anonymous-token", headers={"X-Client-Id": "other"})
    assert minted.json()["code"] == 0  # minting needs no token: not reached
    assert up.credits_reply().json()["code"] == 1001


def test_fault_spec_validation(sim: SimAdmin) -> None:
    for spec in (
        {"kind": "http_500"},  # no endpoint
        {"endpoint": "credits", "endpoints": "all", "kind": "http_500"},
        {"endpoints": "nope", "kind": "http_500"},
        {"endpoints": "all", "kind": "http_500", "rate": 0},
        {"endpoints": "all", "kind": "http_500", "rate": 1.5},
        {"endpoints": ["credits", "state"], "kind": "stream_error"},
        {"endpoints": "reads", "kind": "code_2001"},  # applies to none of them
    ):
        assert sim.http.post("/_sim/faults", json=spec).status_code == 422, spec


def _outcome(up: Upstream, sid: str) -> int | str:
    """HTTP status, or the envelope's code on a 200, or "reset"."""
    try:
        resp = up.state(sid)
    except httpx.TransportError:
        return "reset"
    return resp.json()["code"] if resp.status_code == 200 else resp.status_code


def test_chaos_preset_and_fault_totals(sim: SimAdmin, up: Upstream, sid: str) -> None:
    armed = sim.chaos(rate=0.2, retry_after=2)["armed"]
    kinds = {f["kind"] for f in armed}
    assert kinds == {"http_429", "http_5xx", "reset", "reset_after_accept", "drop", "token_expired", "session_lost"}
    assert next(f for f in armed if f["kind"] == "drop")["endpoints"] == ["run_sse"]
    assert "anonymous_token" not in next(f for f in armed if f["kind"] == "token_expired")["endpoints"]
    outcomes = [_outcome(up, sid) for _ in range(150)]
    assert {0, 429, 500, 502, 503, 1001, 1002, "reset"} == set(outcomes)
    fired = sim.counters()["faults_fired"]
    assert fired["total"] == 150 - outcomes.count(0)
    assert fired["by_endpoint"] == {"state": fired["by_kind"]} and sum(fired["by_kind"].values()) == fired["total"]
    assert sim.summary()["faults_fired"] == fired["total"]


def test_rate_draws_per_endpoint_are_independent() -> None:
    """The draws for one endpoint do not depend on how many calls other endpoints got."""
    spec = FaultSpec(endpoints="all", kind="http_500", rate=0.3)
    alone, mixed = FaultBook(), FaultBook()
    alone.add(spec, seed=3)
    mixed.add(spec, seed=3)
    seen_alone = [alone.take("state", None) is not None for _ in range(50)]
    seen_mixed = []
    for _ in range(50):
        mixed.take("credits", None)
        seen_mixed.append(mixed.take("state", None) is not None)
    assert seen_alone == seen_mixed

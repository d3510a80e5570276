"""One pace toward NemoVideo across every worker (issue 14): against a simulator that caps concurrent streams and
renders per token, two worker processes never exceed the caps; a 429 storm fails no job; deadlines cancel; a
job waiting for capacity says so. Each test runs a reelmill of its own (tests/utils/isolated.py), so that every
process shares the test's pace settings."""

from __future__ import annotations

import time

import pytest
import redis

from shared.pace import Limiter, PaceConfig
from tests.utils.isolated import IsolatedStack

pytestmark = pytest.mark.slow
JOB = {"prompt": "a lighthouse at dusk, waves", "profile": "free-kling-ai-video-generation"}


def _limits(streams: int, renders: int, **more: str) -> dict[str, str]:
    return {
        "REELMILL_UPSTREAM_MAX_STREAMS": str(streams),
        "REELMILL_UPSTREAM_MAX_RENDERS": str(renders),
        "REELMILL_UPSTREAM_RPS": "200",
        **more,
    }


def test_the_caps_hold_across_two_worker_processes(sim):
    sim.configure(
        anonymous_credits=1_000_000,
        silent_share=0.0,
        message_seconds=200.0,
        render_seconds=200.0,
        max_streams_per_token=3,
        max_renders_per_token=2,
    )
    with IsolatedStack(env=_limits(3, 2)) as iso:
        iso.start_workers(2)
        tenant = iso.tenant()
        jobs = [iso.post_job(tenant, JOB) for _ in range(10)]
        done = iso.wait_jobs(tenant, [j["id"] for j in jobs], timeout=240)
        ours = iso.upstream_token_key()  # the session's own workers may call the same simulator meanwhile
    assert [j["status"] for j in done] == ["succeeded"] * 10, [j["error"] for j in done]
    use = sim.counters()["per_token"][ours]
    assert use["streams"]["peak"] <= 3 and use["renders"]["peak"] <= 2, use
    assert sum(use["capacity_429"].values()) == 0, "reelmill never asked beyond the caps"
    assert use["streams"]["peak"] >= 2, "the work did run in parallel"
    sim.assert_no_duplicates()


def test_a_429_storm_slows_the_credential_and_fails_no_job(sim):
    sim.configure(anonymous_credits=1_000_000, silent_share=0.0, message_seconds=100.0, render_seconds=100.0)
    sim.fault_at_rate(["run_sse", "render_submit", "session"], "http_429", 0.5, retry_after=1)
    with IsolatedStack(env=_limits(4, 4, REELMILL_MAX_STEP_ATTEMPTS="2")) as iso:
        iso.start_workers(1)
        tenant = iso.tenant()
        jobs = [iso.post_job(tenant, JOB) for _ in range(6)]
        done = iso.wait_jobs(tenant, [j["id"] for j in jobs], timeout=240)
        pace = Limiter(redis.Redis.from_url(iso.redis_url), "default", PaceConfig()).snapshot()
    assert [j["status"] for j in done] == ["succeeded"] * 6, [j["error"] for j in done]
    assert sim.counters()["faults_fired"]["total"] > 0
    assert sum(pace.rate_limited.values()) > 0, pace  # every 429 slowed the credential's class
    sim.assert_no_duplicates()


def test_deadlines_cancel_a_running_job_and_one_that_never_started(sim):
    sim.configure(anonymous_credits=1_000_000, silent_share=0.0, message_seconds=3000.0)
    with IsolatedStack(env=_limits(4, 4, REELMILL_UPSTREAM_MAX_IN_FLIGHT="1")) as iso:
        iso.start_workers(1)
        tenant = iso.tenant()
        running = iso.post_job(tenant, JOB, **{"Cancel-After": "3s"})
        waiting = iso.post_job(tenant, {**JOB, "priority": "low"}, **{"Cancel-After": "2"})
        first, second = iso.wait_jobs(tenant, [running["id"], waiting["id"]], timeout=90)
    assert first["status"] == "canceled" and first["error"]["code"] == "deadline", first
    assert second["status"] == "canceled" and second["error"]["code"] == "deadline", second
    assert second["started_at"] is None, "the waiting job never started: it cost nothing"
    assert sim.counters()["endpoints"].get("session", 0) == 1, "only the running job made upstream calls"


def test_a_job_waiting_for_capacity_says_so(sim):
    sim.configure(anonymous_credits=1_000_000, silent_share=0.0, message_seconds=600.0, render_seconds=50.0)
    with IsolatedStack(env=_limits(1, 1)) as iso:
        iso.start_workers(1)
        tenant = iso.tenant()
        jobs = [iso.post_job(tenant, JOB) for _ in range(3)]
        throttled: set[str] = set()  # which jobs wait depends on who reaches its stream first
        deadline = time.monotonic() + 60
        while not throttled and time.monotonic() < deadline:
            throttled |= {j["id"] for j in jobs if iso.job(tenant, j["id"])["stage"] == "throttled"}
            time.sleep(0.05)
        assert throttled, "with one stream slot for three jobs, one waits"
        done = iso.wait_jobs(tenant, [j["id"] for j in jobs], timeout=120)
        events = [iso.http.get(f"/v1/jobs/{j['id']}/events", headers=tenant.headers).text for j in jobs]
    assert all(j["status"] == "succeeded" for j in done)
    assert any("waiting for NemoVideo capacity" in text for text in events), "the job that waited says why"

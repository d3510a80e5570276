"""Whatever dies, the job ends: a worker SIGKILLed mid-stream or mid-poll, Redis emptied with jobs in flight."""

from __future__ import annotations

import time

import pytest
import redis

from tests.pipeline.test_flow_e2e import session_of, submit
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("stack_ready")


def restart_worker(services) -> None:
    services["worker"].kill()
    services["worker"] = stack.start_worker("worker")


def wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_sigkill_during_the_message_step(api, tenant, sim, services):
    sim.configure(silent_share=0.0, message_seconds=500.0)  # a 5 s stream
    job = submit(api, tenant)
    stack.wait_job(api, tenant, job["id"], until=lambda j: j["stage"] == "message")
    sid = session_of(job["id"])
    wait_for(
        lambda: sim.session(sid)["draft_version"] >= 1 and sim.session(sid)["runs_in_progress"] >= 1,
        what="the edit to land while the stream runs",
    )
    restart_worker(services)
    done = stack.wait_job(api, tenant, job["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    assert sim.session_count(sid, "run_sse") == 1, "the message was sent once"
    assert len(sim.session(sid)["renders"]) == 1, "exactly one render"
    sim.assert_no_duplicates()


def test_sigkill_during_render_polling(api, tenant, sim, services):
    sim.configure(silent_share=0.0, render_seconds=600.0)  # a 6 s render
    job = submit(api, tenant)
    stack.wait_job(api, tenant, job["id"], until=lambda j: j["stage"] == "render_poll")
    restart_worker(services)
    done = stack.wait_job(api, tenant, job["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    sid = session_of(job["id"])
    assert sim.session_count(sid, "render_submit") == 1, "exactly one render submitted"
    assert sim.session_count(sid, "run_sse") == 1
    sim.assert_no_duplicates()


def test_redis_flushall_with_jobs_in_flight(api, tenant, sim, redis_url):
    sim.configure(silent_share=0.0, message_seconds=150.0, render_seconds=300.0)
    jobs = [submit(api, tenant) for _ in range(8)]
    wait_for(
        lambda: (
            sum(
                api.get(f"/v1/jobs/{j['id']}", headers=tenant.headers).json()["stage"]
                in ("message", "verify", "render_submit", "render_poll")
                for j in jobs
            )
            >= 4
        ),
        what="jobs in flight",
    )
    redis.Redis.from_url(redis_url).flushall()
    for job in jobs:
        done = stack.wait_job(api, tenant, job["id"], timeout=90)
        assert done["status"] == "succeeded", (job["id"], done["error"])
        sid = session_of(job["id"])
        assert sim.session_count(sid, "render_submit") == 1
        assert len(sim.session(sid)["messages"]) == 1
    sim.assert_no_duplicates()


def test_redis_flushall_while_the_worker_is_down(api, tenant, sim, services, redis_url):
    """Every message is gone (queued and unacked) and the worker died: the rows alone bring every job home."""
    sim.configure(silent_share=0.0, message_seconds=150.0, render_seconds=300.0)
    jobs = [submit(api, tenant) for _ in range(6)]
    wait_for(
        lambda: (
            sum(api.get(f"/v1/jobs/{j['id']}", headers=tenant.headers).json()["stage"] != "credential" for j in jobs)
            >= 3
        ),
        what="jobs under way",
    )
    services["worker"].kill()
    try:
        late = [submit(api, tenant) for _ in range(3)]  # waiting in the database: nobody admits them while it is down
        assert all(api.get(f"/v1/jobs/{j['id']}", headers=tenant.headers).json()["stage"] == "queued" for j in late)
        client = redis.Redis.from_url(redis_url)
        client.set("test:before-flush", "1")
        client.flushall()
        # beat and the API write their own keys again at once: what must be gone is what was there before
        assert not client.exists("test:before-flush")
    finally:  # the session's worker comes back whatever happened: a test left without one fails every test after
        services["worker"] = stack.start_worker("worker")
    for job in jobs + late:
        done = stack.wait_job(api, tenant, job["id"], timeout=90)
        assert done["status"] == "succeeded", (job["id"], done["error"])
        assert len(sim.session(session_of(job["id"]))["renders"]) == 1
        assert len(sim.session(session_of(job["id"]))["messages"]) == 1
    sim.assert_no_duplicates()

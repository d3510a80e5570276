"""Message streams on the streams worker's event loop (services/worker/streams.py, eventloop.py): a cancel stops
an open stream within seconds; a stream that falls silent ends at the idle timeout, one that keeps beating ends at
the cap, and either way the job goes on from the session's state without sending the message again. (A worker
SIGKILLed mid-stream: tests/pipeline/test_crash_recovery.py; a stream dropped mid-way: tests/pipeline/
test_faults.py.)"""

from __future__ import annotations

import time

import pytest

from tests.utils import stack
from tests.utils.isolated import IsolatedStack

JOB = {"prompt": "a lighthouse at dusk, waves", "profile": "free-kling-ai-video-generation"}


@pytest.mark.usefixtures("stack_ready")
def test_a_cancel_stops_an_open_stream_within_seconds(api, tenant, sim):
    sim.configure(silent_share=0.0, message_seconds=6000.0)  # a 60 s stream at the test time scale
    made = api.post("/v1/jobs", json=JOB, headers=tenant.headers)
    assert made.status_code == 201, made.text
    job = made.json()
    stack.wait_job(api, tenant, job["id"], until=lambda j: j["stage"] == "message")
    stack.wait_job(api, tenant, job["id"], until=lambda j: bool(sim.counters()["in_flight_streams"]), timeout=30)
    asked = time.monotonic()
    api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers)
    done = stack.wait_job(api, tenant, job["id"], timeout=30)
    took = time.monotonic() - asked
    assert done["status"] == "canceled" and done["error"]["code"] == "canceled"
    assert took < 15, f"the stream stopped {took:.1f} s after the cancel"
    assert sim.counters()["in_flight_streams"] == 0, "reelmill closed its stream"
    assert sim.endpoint_count("render_submit") == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ending", "env", "sim_config"),
    [
        ("idle", {"REELMILL_SSE_IDLE_S": "1.5"}, {"heartbeat_every_s": 100000.0}),
        ("cap", {"REELMILL_SSE_MAX_S": "2"}, {"heartbeat_every_s": 20.0}),
    ],
)
def test_a_stream_ended_by_silence_or_the_cap_goes_on_from_the_state(sim, ending, env, sim_config):
    # the agent's edit lands early (10% of a 30 s run); its stream then stays open far longer than allowed
    sim.configure(anonymous_credits=1_000_000, silent_share=0.0, message_seconds=3000.0, **sim_config)
    with IsolatedStack(env={"REELMILL_UPSTREAM_RPS": "200", **env}) as iso:
        iso.start_workers(1)
        tenant = iso.tenant()
        job = iso.post_job(tenant, JOB)
        (done,) = iso.wait_jobs(tenant, [job["id"]], timeout=120)
        log = "\n".join(p.tail(400) for p in iso.procs if "worker" in p.name)
    assert done["status"] == "succeeded", done["error"]
    assert f"stream {ending}" in log, f"the stream ended by {ending}"
    (session,) = [s for s in sim.counters()["per_session"].values()]
    assert session["messages_sent"] == 1, "the message was not sent again"

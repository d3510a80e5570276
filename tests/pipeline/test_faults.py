"""Every class of upstream failure, injected in the simulator: transient ones are retried to success, terminal
ones fail the job with the message a user should read."""

from __future__ import annotations

import pytest

from tests.pipeline.test_flow_e2e import session_of, submit
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("stack_ready")

TRANSIENT = [
    ("run_sse", "http_429", {"retry_after": 1}),
    ("run_sse", "http_500", {}),
    ("run_sse", "stream_error", {"error_form": 0}),  # author "system", text "Error: ..."
    ("run_sse", "stream_error", {"error_form": 1}),  # a bare {"error": ...}
    ("run_sse", "stream_error", {"error_form": 2}),  # errorCode / errorMessage on an event
    ("session", "code_1001", {}),
    ("session", "http_401", {}),
    ("state", "http_503", {}),
    ("render_submit", "http_502", {}),
    ("render_status", "http_500", {}),
    ("render_status", "http_429", {"retry_after": 1}),
]


TRANSIENT_IDS = [f"{e}-{k}" + (f"-form{x['error_form']}" if "error_form" in x else "") for e, k, x in TRANSIENT]


@pytest.mark.parametrize(("endpoint", "kind", "extra"), TRANSIENT, ids=TRANSIENT_IDS)
def test_transient_faults_are_retried(api, tenant, sim, endpoint, kind, extra):
    sim.configure(silent_share=0.0)
    sim.fault(endpoint, kind, times=1, **extra)
    job = submit(api, tenant)
    done = stack.wait_job(api, tenant, job["id"], timeout=60)
    assert done["status"] == "succeeded", done["error"]
    sid = session_of(job["id"])
    assert sim.session(sid)["renders"], "a render was made"
    assert len(sim.session(sid)["renders"]) == 1, "exactly one render, whatever was retried"


def test_dropped_stream_is_not_sent_twice(api, tenant, sim):
    """The connection drops mid-stream after the edit landed: reelmill reads the state and does not resend."""
    sim.configure(silent_share=0.0, message_seconds=100.0)
    sim.fault("run_sse", "drop", times=1, after_events=3)
    job = submit(api, tenant)
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "succeeded", done["error"]
    sid = session_of(job["id"])
    assert sim.session_count(sid, "run_sse") == 1
    assert len(sim.session(sid)["messages"]) == 1


def test_lost_session_gets_a_new_one_and_replays(api, tenant, sim):
    sim.fault("run_sse", "code_1002", times=1)
    job = submit(api, tenant, assets=["https://cdn.example.com/a.mp4"])
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "succeeded", done["error"]
    counters = sim.counters()
    assert counters["endpoints"]["session"] >= 2, "a second session was created"
    sid = session_of(job["id"])
    assert sim.session_count(sid, "upload") == 1, "the upload was replayed into the new session"
    assert len(sim.session(sid)["messages"]) == 1


@pytest.mark.parametrize(
    ("endpoint", "kind", "code", "words"),
    [
        ("run_sse", "code_2001", "out_of_credits", "register?bind=anon_"),
        ("upload", "code_4001", "unsupported_file_type", "mp4"),
        ("upload", "code_4002", "file_too_large", "MB"),
        ("render_submit", "http_402", "export_blocked", "plan"),
    ],
)
def test_terminal_faults_fail_clearly(api, tenant, sim, endpoint, kind, code, words):
    sim.fault(endpoint, kind, times=1)
    job = submit(api, tenant, assets=["https://cdn.example.com/a.mp4"])
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert words in done["error"]["message"]
    assert "nmv_" not in done["error"]["message"]


def test_retries_are_bounded(api, tenant, sim):
    sim.fault("state", "http_500", times=100)
    job = submit(api, tenant)
    done = stack.wait_job(api, tenant, job["id"], timeout=90)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "upstream_unavailable"
    assert "attempts" in done["error"]["message"]
    sim.clear_faults()


def test_a_failed_render_is_submitted_again_then_fails_the_job_clearly(api, tenant, sim):
    """NemoVideo says every render failed: each is submitted again under a new id (exports are free) until the
    retries are spent; then the job fails `render_failed`, saying how many tries it made."""
    sim.configure(silent_share=0.0, render_fail_share=1.0)
    try:
        job = submit(api, tenant)
        done = stack.wait_job(api, tenant, job["id"], timeout=90)
    finally:
        sim.configure(render_fail_share=0.0)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "render_failed"
    tries = 1 + int(stack.test_env().get("REELMILL_RENDER_RETRIES", "2"))
    assert f"{tries} of {tries} tries" in done["error"]["message"]
    assert len(sim.session(session_of(job["id"]))["renders"]) == tries, "one render per try, never two at once"

"""Jobs through the whole flow on the simulator: real worker process, real Redis, real PostgreSQL, real HTTP."""

from __future__ import annotations

import re
import time

import pytest

from shared.db import session_scope
from shared.tables import Job
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("stack_ready")


def submit(api, tenant, **body):
    resp = api.post(
        "/v1/jobs", json={"prompt": "a fox running through a snowy forest at dusk", **body}, headers=tenant.headers
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def session_of(job_id: str) -> str:
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.session_id
        return job.session_id


@pytest.mark.parametrize("profile", ["ai-video-generator-free-kapwing", "free-kling-ai-video-generation"])
def test_both_profiles_end_to_end(api, tenant, sim, profile):
    sim.configure(silent_share=0.0, temporary_issue_share=0.0)
    job = submit(api, tenant, profile=profile, assets=["https://cdn.example.com/clip.mp4"])
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["stage"] == "done" and done["progress"] == 100
    assert done["output"]["url"].startswith("http://127.0.0.1")
    assert done["output"]["format"] == "mp4"
    assert done["messages"], "the backend's texts are recorded"
    assert done["timeline"].startswith("Timeline (")
    assert done["started_at"] and done["completed_at"]
    sid = session_of(job["id"])
    counts = sim.counters()["sessions"][sid]
    assert counts["run_sse"] == 1
    assert counts["render_submit"] == 1
    assert counts["upload"] == 1
    # every request the job made carried this profile's attribution
    sources = {r["headers"].get("x-skill-source") for r in sim.requests(500) if sid in r["path"]}
    assert sources == {profile}


def test_silent_stream_is_verified_from_state(api, tenant, sim):
    sim.configure(silent_share=1.0)
    job = submit(api, tenant)
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["messages"][-1].startswith("The edit was applied. Timeline (")
    assert sim.session_count(session_of(job["id"]), "state") >= 1


def test_prefer_wait_holds_until_done(api, tenant, sim):
    sim.configure(silent_share=0.0)
    resp = api.post("/v1/jobs", json={"prompt": "quick one"}, headers={**tenant.headers, "Prefer": "wait=30"})
    assert resp.status_code == 201
    assert resp.json()["status"] == "succeeded"
    assert resp.headers["Preference-Applied"] == "wait=30"


def test_one_anonymous_token_for_many_jobs(api, tenant, sim):
    before = sim.endpoint_count("anonymous_token")
    jobs = [submit(api, tenant) for _ in range(5)]
    for job in jobs:
        assert stack.wait_job(api, tenant, job["id"])["status"] == "succeeded"
    assert sim.endpoint_count("anonymous_token") - before <= 1


def test_cancel_while_rendering_cancels_upstream(api, tenant, sim):
    sim.configure(render_seconds=3000.0)  # 30 s at the test time scale
    job = submit(api, tenant)
    stack.wait_job(api, tenant, job["id"], until=lambda j: j["stage"] == "render_poll")
    resp = api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers)
    assert resp.status_code == 200
    done = stack.wait_job(api, tenant, job["id"])
    assert done["status"] == "canceled"
    assert sim.endpoint_count("render_cancel") == 1


def test_metrics_count_jobs_steps_and_queues(api, tenant, sim):
    job = submit(api, tenant)
    assert stack.wait_job(api, tenant, job["id"])["status"] == "succeeded"

    def scrape() -> str:
        return api.get("/metrics").text

    step = re.compile(r'^reelmill_step_duration_seconds_count\{stage="message"\} [1-9]', re.M)
    text = wait_for(scrape, lambda t: step.search(t), what="the workers' step figures (flushed every second)")
    succeeded = float(re.search(r'^reelmill_jobs\{status="succeeded"\} (\S+)$', text, re.M).group(1))
    assert succeeded >= 1
    assert re.search(r'^reelmill_queue_depth\{queue="steps"\} \d', text, re.M)
    assert "reelmill_jobs_in_flight" in text


def wait_for(fetch, ok, what: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if ok(value):
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")

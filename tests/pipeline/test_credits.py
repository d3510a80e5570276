"""Credits before spending: the balance, and work refused up front when it cannot be paid for."""

from __future__ import annotations

import time

import pytest

from tests.batches.helpers import csv_of, post_batch
from tests.pipeline.test_flow_e2e import submit
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("stack_ready")


@pytest.fixture()
def show_balance(settings_env) -> None:
    settings_env(REELMILL_CREDITS_SHOW_BALANCE="true")


def test_balance_shows_available_frozen_total(api, tenant, sim, show_balance):
    stack.give_credits(api, tenant, sim, 420)
    resp = api.get("/v1/credits", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    balance = resp.json()["balance"]
    assert balance["available"] == 420
    assert balance["total"] == balance["available"] + balance["frozen"]
    assert balance["free"] == balance["available"] - balance["reserved_all"]


def test_a_job_that_cannot_be_paid_for_is_refused_with_the_numbers(api, tenant, sim, show_balance):
    stack.give_credits(api, tenant, sim, 15)
    steps = [{"text": f"clip {i}"} for i in range(3)]  # three SSE turns: about 30 credits
    resp = api.post("/v1/jobs", json={"steps": steps}, headers=tenant.headers)
    assert resp.status_code == 402, resp.text
    err = resp.json()["error"]
    assert err["code"] == "insufficient_credits"
    assert err["details"]["needed"] == 30
    assert err["details"]["available"] == 15
    assert "30 credits" in err["message"]
    stack.give_credits(api, tenant, sim, 100_000)
    ok = api.post("/v1/jobs", json={"steps": steps}, headers=tenant.headers)
    assert ok.status_code == 201
    assert stack.wait_job(api, tenant, ok.json()["id"])["status"] == "succeeded"


def test_a_follow_up_that_cannot_be_paid_for_is_refused(api, tenant, sim):
    job = submit(api, tenant)
    stack.wait_job(api, tenant, job["id"])
    stack.give_credits(api, tenant, sim, 0)
    resp = api.post(f"/v1/jobs/{job['id']}/messages", json={"text": "add a second title card"}, headers=tenant.headers)
    assert resp.status_code == 402
    # an intent costs nothing and still runs
    free = api.post(f"/v1/jobs/{job['id']}/messages", json={"text": "status"}, headers=tenant.headers)
    assert free.status_code == 202


def test_out_of_credits_mid_batch_pauses_it_then_resume_finishes_it(api, tenant, sim):
    sim.configure(silent_share=0.0, render_seconds=400.0)  # 4 s renders: time to empty the balance meanwhile
    stack.give_credits(api, tenant, sim, 1_000_000)
    data = csv_of([f"Clip {i},c{i}" for i in range(5)])
    batch = post_batch(api, tenant, data, max_in_flight="1").json()
    first = wait_batch_jobs(api, tenant, batch["id"], lambda jobs: jobs[0]["stage"] == "render_poll")
    stack.give_credits(api, tenant, sim, 0)  # the first job's message was paid for; the next one will meet 2001
    paused = wait_batch(api, tenant, batch["id"], lambda b: b["status"] == "paused")
    assert "credits" in paused["paused_reason"]
    jobs = wait_batch_jobs(api, tenant, batch["id"], lambda js: js[0]["status"] == "succeeded")
    assert [j["status"] for j in jobs] == ["succeeded", "queued", "queued", "queued", "queued"], "none failed"
    assert first[0]["id"] == jobs[0]["id"]

    refused = api.post(f"/v1/batches/{batch['id']}/resume", headers=tenant.headers)
    assert refused.status_code == 402, "still no credits: the numbers say so"
    assert refused.json()["error"]["details"]["needed"] == 40

    stack.give_credits(api, tenant, sim, 1_000_000)
    resumed = api.post(f"/v1/batches/{batch['id']}/resume", headers=tenant.headers)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "running"
    done = wait_batch(api, tenant, batch["id"], lambda b: b["status"] == "completed", timeout=90)
    assert done["counts"]["succeeded"] == 5
    again = api.post(f"/v1/batches/{batch['id']}/resume", headers=tenant.headers)
    assert again.status_code == 409


def wait_batch(api, tenant, batch_id, until, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = api.get(f"/v1/batches/{batch_id}", headers=tenant.headers).json()
        if until(batch):
            return batch
        time.sleep(0.1)
    pytest.fail(f"batch {batch_id}: {batch}")


def wait_batch_jobs(api, tenant, batch_id, until, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = api.get(f"/v1/batches/{batch_id}/jobs", headers=tenant.headers).json()["data"]
        if jobs and until(jobs):
            return jobs
        time.sleep(0.1)
    pytest.fail(f"batch {batch_id} jobs: {[(j['status'], j['stage']) for j in jobs]}")

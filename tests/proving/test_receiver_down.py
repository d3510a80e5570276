"""A webhook receiver that is down for the whole run, then comes back: every event, the terminal ones above all,
arrives once it is up, exactly once each, signed so that the `standardwebhooks` package verifies it.

The retry schedule is the Standard Webhooks one scaled by REELMILL_WEBHOOK_SCHEDULE_SCALE (0.001 in the tests:
attempts at 0, 5 ms, 0.3 s, 1.8 s, 7.2 s, 18 s, 36 s, 36 s, with jitter).
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from shared.db import session_scope
from shared.tables import Delivery
from tests.utils import proving as pv
from tests.utils import stack
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until
from tests.webhooks.helpers import deliveries_of, tenant_row
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.slow
FAILED_ATTEMPTS_WHILE_DOWN = 3  # the receiver is back only after every delivery has failed this often


@pytest.fixture()
def down_receiver(api, tenant: stack.Tenant):
    secret = api.get("/v1/webhooks/secret", headers=tenant.headers).json()["secret"]
    rx = Receiver(secrets=[secret])  # not started: connections to its port are refused
    yield rx
    rx.stop()
    with session_scope() as session:  # nothing left for the sweeper to send to a port another test may take
        session.execute(
            update(Delivery)
            .where(Delivery.tenant_id == tenant_row(tenant.name).id, Delivery.status == "pending")
            .values(status="failed", next_attempt_at=None)
        )


def test_every_event_arrives_once_the_receiver_is_back(api, tenant, proving: SimAdmin, down_receiver: Receiver):
    sim, rx = proving, down_receiver
    sim.configure(message_seconds=300.0)  # 3 s streams: time to cancel one mid-stream
    hook = {"webhook": rx.url("/hooks"), "webhook_events_filter": ["start", "completed"]}
    ok = [
        pv.submit(api, tenant, profile=profile, prompt=f"clip {i}", **hook)
        for i, profile in enumerate(["ai-video-generator-free-kapwing", "free-kling-ai-video-generation"] * 2)
    ]
    sim.fault("upload", "code_4001")  # the one job with an asset fails: the upstream refuses its file
    refused = pv.submit(api, tenant, prompt="clip with a bad file", assets=["https://cdn.example.com/a.mp4"], **hook)
    canceled = pv.submit(api, tenant, prompt="clip to cancel", **hook)
    stack.wait_job(api, tenant, canceled["id"], until=lambda j: j["stage"] == "message")
    # 200 once the stream stopped, 202 while it is stopping (a few seconds on a busy machine); it ends canceled below
    assert api.post(f"/v1/jobs/{canceled['id']}/cancel", headers=tenant.headers).status_code in (200, 202)

    ends = {j["id"]: "succeeded" for j in ok} | {refused["id"]: "failed", canceled["id"]: "canceled"}
    for job_id, status in ends.items():
        assert stack.wait_job(api, tenant, job_id, timeout=60)["status"] == status, job_id

    def all_failing() -> bool:
        rows = [d for job_id in ends for d in deliveries_of(job_id)]
        return all(d.status == "pending" and d.attempts >= FAILED_ATTEMPTS_WHILE_DOWN for d in rows)

    wait_until(all_failing, timeout=60, what=f"every delivery refused {FAILED_ATTEMPTS_WHILE_DOWN} times")
    assert rx.received() == []
    rx.start()

    wanted = {(job_id, t) for job_id, status in ends.items() for t in ("job.started", f"job.{status}")}
    rx.wait_for(lambda r: len(r.received("/hooks")) >= len(wanted), timeout=60)
    got = rx.received("/hooks")
    assert sorted((r.payload["data"]["id"], r.payload["type"]) for r in got) == sorted(wanted)
    assert all(r.verified_with == [0] for r in got), "every delivery verifies with standardwebhooks"
    assert len({r.webhook_id for r in got}) == len(got)
    for r in got:
        if r.payload["type"] != "job.started":
            assert r.payload["data"]["status"] == ends[r.payload["data"]["id"]]
    rows = [d for job_id in ends for d in deliveries_of(job_id)]
    assert {d.status for d in rows} == {"succeeded"} and len(rows) == len(wanted)

"""A real job on the simulator, through the real worker, with its webhooks verified by `standardwebhooks`."""

from __future__ import annotations

from tests.utils.stack import wait_job
from tests.webhooks.helpers import Hooked, wait_final


def test_job_webhooks_end_to_end(stack_ready, hooked: Hooked) -> None:
    api = stack_ready
    body = {"prompt": "a cat surfing at sunset", "webhook": hooked.rx.url("/e2e")}
    resp = api.post("/v1/jobs", json=body, headers=hooked.tenant.headers)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]
    final = wait_job(api, hooked.tenant, job_id, timeout=90)
    assert final["status"] == "succeeded", final
    rows = wait_final(job_id, 2)
    assert {r.status for r in rows} == {"succeeded"}
    got = hooked.rx.received("/e2e")
    got.sort(key=lambda r: r.payload["type"] != "job.started")  # deliveries run concurrently
    assert [r.payload["type"] for r in got] == ["job.started", "job.succeeded"]
    assert all(r.verified_with == [0] for r in got)
    succeeded = got[1].payload["data"]
    assert succeeded["id"] == job_id and succeeded["status"] == "succeeded" and succeeded["output"]
    now = api.get(f"/v1/jobs/{job_id}", headers=hooked.tenant.headers).json()
    assert without_artifacts(succeeded) == without_artifacts(now)  # the copy to the artifact store goes on after
    views = api.get(f"/v1/jobs/{job_id}/deliveries", headers=hooked.tenant.headers).json()["data"]
    assert [v["event_type"] for v in views] == ["job.started", "job.succeeded"]
    assert [v["webhook_id"] for v in views] == [r.webhook_id for r in got]


def without_artifacts(job: dict) -> dict:
    """The job object less its outputs' `artifact` (which changes after the job ends, as the copy is stored)."""

    def strip(output: dict | None) -> dict | None:
        return None if output is None else {k: v for k, v in output.items() if k != "artifact"}

    revisions = [{**r, "output": strip(r["output"])} for r in job["revisions"]]
    return {**job, "output": strip(job["output"]), "revisions": revisions}

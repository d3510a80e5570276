"""Every succeeded job ends with a stored artifact in the local store: real worker process, real Redis and
PostgreSQL, the simulator's real MP4 bytes over HTTP, and the API serving the stored file."""

from __future__ import annotations

import csv
import io
import stat

import httpx
import pytest

from shared.settings import get_settings
from tests.artifacts.helpers import (
    events_of,
    local_path,
    partials,
    row,
    rows_of,
    succeeded_job,
    wait_artifact,
)
from tests.utils import stack
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.usefixtures("stack_ready")


def sim_bytes(url: str) -> bytes:
    return httpx.get(url, timeout=30).content


def test_succeeded_job_has_a_stored_artifact_with_the_simulators_bytes(api, tenant, sim):
    job = succeeded_job(api, tenant)
    job = wait_artifact(api, tenant, job["id"])
    artifact = job["output"]["artifact"]
    assert artifact["status"] == "stored", artifact
    render_id = job["output"]["render_id"]
    assert artifact["sha256"] == sim.render_sha256(render_id)
    original = sim_bytes(job["output"]["url"])
    assert artifact["size"] == len(original) and artifact["content_type"] == "video/mp4"
    assert artifact["url"] == f"http://testserver/v1/jobs/{job['id']}/output?revision=0"
    assert artifact["stored_at"] and artifact["expires_at"] is None and artifact["reason"] is None
    assert job["revisions"][0]["output"]["artifact"] == artifact
    # on disk: the whole file, 0600 in 0700 directories, nothing partial left
    path = local_path(row(job["id"]))
    assert path.read_bytes() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert partials(path.parent) == []
    assert events_of(job["id"]) == ["job.artifact.stored"]


def test_output_endpoint_serves_the_file_with_ranges_and_etag(api, tenant):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    artifact = job["output"]["artifact"]
    whole = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["content-length"] == str(artifact["size"])
    assert whole.headers["etag"] == f'"{artifact["sha256"]}"'
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content[4:8] == b"ftyp" and len(whole.content) == artifact["size"]

    part = api.get(f"/v1/jobs/{job['id']}/output", headers={**tenant.headers, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{artifact['size']}"
    tail = api.get(f"/v1/jobs/{job['id']}/output", headers={**tenant.headers, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    past = api.get(f"/v1/jobs/{job['id']}/output", headers={**tenant.headers, "Range": f"bytes={artifact['size']}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{artifact['size']}"
    stale = {**tenant.headers, "Range": "bytes=0-9", "If-Range": '"not-the-etag"'}
    assert api.get(f"/v1/jobs/{job['id']}/output", headers=stale).status_code == 200
    same = api.get(f"/v1/jobs/{job['id']}/output", headers={**tenant.headers, "If-None-Match": whole.headers["etag"]})
    assert same.status_code == 304
    head = api.head(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert head.status_code == 200 and head.headers["content-length"] == str(artifact["size"]) and not head.content
    by_revision = api.get(f"/v1/jobs/{job['id']}/output?revision=0", headers=tenant.headers)
    assert by_revision.content == whole.content


def test_output_is_tenant_scoped_and_names_what_is_missing(api, tenant):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    other = stack.new_tenant()
    resp = api.get(f"/v1/jobs/{job['id']}/output", headers=other.headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert api.get(f"/v1/jobs/{job['id']}/output").status_code == 401
    missing = api.get(f"/v1/jobs/{job['id']}/output?revision=7", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "revision"
    bad = api.get(f"/v1/jobs/{job['id']}/output?revision=-1", headers=tenant.headers)
    assert bad.status_code == 422


def test_each_step_gets_its_own_artifact_served_by_revision(api, tenant, sim):
    steps = [{"text": "a fox in the snow"}, {"text": "make it night and add falling stars"}]
    job = succeeded_job(api, tenant, prompt=None, steps=steps)

    def both_stored():
        rows = rows_of(job["id"])
        return rows if len(rows) == 2 and all(r.status == "stored" for r in rows) else None

    first, second = wait_until(both_stored, 90, "both steps' artifacts")
    assert first.render_id != second.render_id and first.sha256 != second.sha256
    for artifact in (first, second):
        assert artifact.sha256 == sim.render_sha256(artifact.render_id)
        served = api.get(f"/v1/jobs/{job['id']}/output?revision={artifact.turn_seq}", headers=tenant.headers)
        assert served.status_code == 200 and served.headers["etag"] == f'"{artifact.sha256}"'
    view = wait_artifact(api, tenant, job["id"])
    assert view["output"]["artifact"]["sha256"] == second.sha256  # the job's output is its last step's
    latest = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert latest.headers["etag"] == f'"{second.sha256}"'


def test_results_csv_carries_the_artifact_url_and_sha256(api, tenant):
    body = "prompt,external_id\nA fox at dawn,fox-1\nA fox at dusk,fox-2\n"
    files = {"file": ("jobs.csv", body.encode(), "text/csv")}
    batch = api.post("/v1/batches", files=files, headers=tenant.headers).json()

    def all_stored():
        jobs = api.get(f"/v1/batches/{batch['id']}/jobs", headers=tenant.headers).json()["data"]
        stored = [j for j in jobs if ((j.get("output") or {}).get("artifact") or {}).get("status") == "stored"]
        return jobs if len(stored) == 2 else None

    jobs = {j["external_id"]: j for j in wait_until(all_stored, 120, "the batch's artifacts")}
    text = api.get(f"/v1/batches/{batch['id']}/results.csv", headers=tenant.headers).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["line", "external_id", "status", "output_url", "error", "artifact_url", "artifact_sha256"]
    for line in rows[1:]:
        artifact = jobs[line[1]]["output"]["artifact"]
        assert line[5] == artifact["url"] and line[6] == artifact["sha256"]


def test_webhook_filter_artifact_is_accepted(api, tenant):
    job = succeeded_job(api, tenant, webhook_events_filter=["completed", "artifact"])
    assert job["webhook_events_filter"] == ["completed", "artifact"]


def test_store_setting_none_turns_mirroring_off(api, tenant, settings_env):
    settings_env(REELMILL_ARTIFACT_STORE="none")
    assert get_settings().effective_artifact_store == "none"

"""The S3 store on the real stack: a worker whose artifacts go to a bucket on moto's S3 server (real HTTP), the
API streaming from the bucket or redirecting to a pre-signed URL, and the bucket going down mid-run."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from shared.artifacts.stores import reset_stores
from tests.artifacts.conftest import Moto
from tests.artifacts.helpers import row, succeeded_job, wait_artifact
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.usefixtures("stack_ready")


def test_output_is_stored_in_the_bucket_with_the_simulators_bytes(api, tenant, sim, moto: Moto, s3_stack):
    sim.configure(output_bytes=20_000_000)  # several multipart parts
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    artifact = job["output"]["artifact"]
    assert artifact["status"] == "stored", artifact
    assert artifact["size"] == 20_000_000
    assert artifact["sha256"] == sim.render_sha256(job["output"]["render_id"])
    stored = row(job["id"])
    assert stored.store_url == f"s3://{s3_stack['bucket']}/videos"
    body = moto.client().get_object(Bucket=s3_stack["bucket"], Key=f"videos/{stored.key}")
    assert body["ContentType"] == "video/mp4"
    assert hashlib.sha256(body["Body"].read()).hexdigest() == artifact["sha256"]
    uploads = moto.client().list_multipart_uploads(Bucket=s3_stack["bucket"]).get("Uploads", [])
    assert uploads == []  # completed, none left open

    part = api.get(f"/v1/jobs/{job['id']}/output", headers={**tenant.headers, "Range": "bytes=8388600-8388615"})
    assert part.status_code == 206 and len(part.content) == 16
    assert part.headers["content-range"] == "bytes 8388600-8388615/20000000"
    whole = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == artifact["sha256"]
    assert whole.content[8388600:8388616] == part.content


def test_presign_redirects_to_a_url_that_serves_the_file(api, tenant, settings_env, s3_stack):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    settings_env(REELMILL_ARTIFACT_PRESIGN="true", REELMILL_ARTIFACT_PRESIGN_TTL_S="60")
    resp = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers, follow_redirects=False)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(s3_stack["REELMILL_S3_ENDPOINT_URL"]) and "X-Amz-Signature=" in location
    fetched = httpx.get(location, timeout=30)  # no API key, no AWS credentials: the signature is the grant
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == job["output"]["artifact"]["sha256"]
    assert fetched.headers["content-type"] == "video/mp4"


def test_bucket_down_during_the_run_then_back_is_mirrored_afterwards(api, tenant, sim, moto: Moto, s3_stack):
    moto.stop()
    try:
        job = succeeded_job(api, tenant)  # the job does not wait for the store
        assert job["output"]["artifact"]["status"] == "pending"
        failing = wait_until(lambda: (r := row(job["id"])).attempts >= 1 and r.reason and r, 60, "a failed attempt")
        assert failing.status == "pending" and "unreachable" in failing.reason, failing.reason
    finally:
        moto.start()  # same port; moto keeps no data across a restart, like a store rebuilt empty
    moto.new_bucket(s3_stack["bucket"])
    reset_stores()
    done = wait_artifact(api, tenant, job["id"])
    artifact = done["output"]["artifact"]
    assert done["status"] == "succeeded"
    assert artifact["status"] == "stored", artifact
    assert artifact["sha256"] == sim.render_sha256(done["output"]["render_id"])
    served = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert hashlib.sha256(served.content).hexdigest() == artifact["sha256"]

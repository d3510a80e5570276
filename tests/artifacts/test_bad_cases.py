"""The bad cases, each on the real stack (local store): an expired output link, a body that is not an MP4, a full
disk, a job canceled while its artifact downloads, a lost message, retention. The job stays `succeeded` whatever
its artifact says."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from services.worker.mirror import mirror_artifact
from shared.db import session_scope
from shared.tables import Artifact, Job
from shared.timeutil import utcnow
from tests.artifacts.helpers import local_path, partials, row, succeeded_job, wait_artifact
from tests.utils import stack
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.usefixtures("stack_ready")


def test_expired_output_link_falls_back_to_the_download_endpoint(api, tenant, sim):
    sim.configure(output_link="expired_403")
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    artifact = job["output"]["artifact"]
    assert artifact["status"] == "stored", artifact
    assert artifact["sha256"] == sim.render_sha256(job["output"]["render_id"])
    counts = sim.counters()["endpoints"]
    assert counts.get("render_output", 0) >= 1 and counts.get("render_download", 0) >= 1


@pytest.mark.parametrize(("link", "endpoint"), [("expired_404", "gone_410"), ("expired_403", "gone_404")])
def test_expired_link_and_gone_render_fail_the_artifact_not_the_job(api, tenant, sim, link, endpoint):
    sim.configure(output_link=link, download_link=endpoint)
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    assert job["status"] == "succeeded"
    artifact = job["output"]["artifact"]
    assert artifact["status"] == "failed" and artifact["url"] is None and artifact["sha256"] is None
    assert "output URL: HTTP 40" in artifact["reason"] and "download endpoint: HTTP 4" in artifact["reason"]
    assert row(job["id"]).attempts == 1  # a link that is gone is not retried
    resp = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert resp.status_code == 409 and "could not be stored" in resp.json()["error"]["message"]


def test_a_body_that_is_not_an_mp4_is_never_kept(api, tenant, sim):
    sim.configure(output_body="html")
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    assert job["status"] == "succeeded"
    artifact = job["output"]["artifact"]
    assert artifact["status"] == "failed" and "not an MP4" in artifact["reason"], artifact
    path = local_path(row(job["id"]))
    assert not path.exists() and partials(path.parent) == []


def test_a_second_run_downloads_nothing(api, tenant, sim):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    before = sim.counters()["endpoints"]
    mirror_artifact(row(job["id"]).id)  # as a duplicate task message would
    after = sim.counters()["endpoints"]
    for endpoint in ("render_output", "render_download"):
        assert after.get(endpoint, 0) == before.get(endpoint, 0), endpoint
    assert row(job["id"]).status == "stored" and row(job["id"]).attempts == 1


def _repoint(artifact_id: str, **values) -> None:
    """Send an artifact back to pending, as if its message had been lost (the sweeper finds it)."""
    fields = {"status": "pending", "attempts": 0, "reason": None, "sha256": None, "size": None, "stored_at": None}
    fields |= {"lease_owner": None, "lease_until": None, "next_attempt_at": utcnow(), "expires_at": None}
    with session_scope() as session:
        session.exec(update(Artifact).where(Artifact.id == artifact_id).values(**(fields | values)))


def test_a_lost_mirror_message_is_resent_by_the_sweeper(api, tenant, sim):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    first = row(job["id"])
    local_path(first).unlink()
    _repoint(first.id)  # no task is sent: only the sweeper can find it
    again = wait_until(lambda: (r := row(job["id"])).status == "stored" and r, 30, "the re-sent mirror")
    assert again.sha256 == first.sha256 and local_path(again).read_bytes()[4:8] == b"ftyp"


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a real file system that runs out of space (ENOSPC)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mount)], check=False)
    assert done.returncode == 0, "mounting a tmpfs needs root (the test machines and CI run as root)"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_retried_leaves_nothing_half_written_and_then_stores(api, tenant, sim, tiny_disk):
    sim.configure(output_bytes=1_500_000)
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 2_300_000)  # leaves about 0.8 MB: less than the 1.5 MB video
    first = row(job["id"])
    _repoint(first.id, store_url=tiny_disk.as_uri())

    def failed_for_space():
        current = row(job["id"])
        return current if current.attempts >= 1 and "full" in (current.reason or "") else None

    failing = wait_until(failed_for_space, 30, "an attempt that meets the full disk")
    assert failing.status == "pending" and failing.next_attempt_at is not None, failing
    assert sorted(p.name for p in tiny_disk.rglob("*") if p.is_file()) == ["filler"]  # nothing half-written
    filler.unlink()
    stored = wait_until(lambda: (r := row(job["id"])).status == "stored" and r, 30, "the retry after space freed")
    assert stored.sha256 == first.sha256 == sim.render_sha256(job["output"]["render_id"])
    assert (tiny_disk / first.key).stat().st_size == 1_500_000 and partials(tiny_disk) == []
    assert api.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()["status"] == "succeeded"


def test_cancel_while_the_artifact_downloads_stops_the_download(api, tenant, sim):
    sim.configure(output_bytes=3_000_000_000)  # long enough to be caught mid-way
    job = succeeded_job(api, tenant)
    downloading = wait_until(lambda: (r := row(job["id"])).lease_owner and r, 60, "the download to start")
    path = local_path(downloading)
    sim.configure(message_seconds=100_000)  # the follow-up below keeps the job running
    resp = api.post(f"/v1/jobs/{job['id']}/messages", json={"text": "make it warmer"}, headers=tenant.headers)
    assert resp.status_code == 202, resp.text
    # 200 once the worker stopped the follow-up's stream, 202 while it still is (a few seconds on a busy machine)
    assert api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers).status_code in (200, 202)
    stopped = wait_until(lambda: (r := row(job["id"])).status != "pending" and r, 60, "the download to stop")
    assert stopped.status == "failed" and "canceled" in stopped.reason, stopped  # not stored: stopped mid-way
    assert not path.exists() and partials(path.parent) == []
    ended = stack.wait_job(api, tenant, job["id"], timeout=60)
    assert ended["status"] == "canceled"


def test_retention_deletes_expired_artifacts_and_the_job_says_expired(api, tenant):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    stored = row(job["id"])
    with session_scope() as session:
        session.exec(
            update(Artifact).where(Artifact.id == stored.id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = wait_until(lambda: (r := row(job["id"])).status == "expired" and r, 30, "the sweeper to expire it")
    assert not local_path(expired).exists()
    view = api.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()
    assert view["status"] == "succeeded" and view["output"]["artifact"]["status"] == "expired"
    resp = api.get(f"/v1/jobs/{job['id']}/output", headers=tenant.headers)
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "artifact_expired"


def test_prune_command_deletes_what_is_older_than_asked(api, tenant):
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    stored = row(job["id"])
    with session_scope() as session:
        session.exec(update(Artifact).where(Artifact.id == stored.id).values(stored_at=utcnow() - timedelta(days=40)))
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "artifacts", "prune", "--older-than-days", "30"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout and row(job["id"]).status == "expired"
    assert not local_path(stored).exists()
    with session_scope() as session:
        assert session.get(Job, job["id"]).status == "succeeded"

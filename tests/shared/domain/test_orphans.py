"""Uploaded files never outlive the jobs that need them (issue 11, item 5): a job canceled while no worker holds
it frees its files at once; the sweep removes old files no open job names."""

from __future__ import annotations

import os
import time

from shared.db import session_scope
from shared.domain import orphans
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row
from shared.settings import get_settings
from shared.tables import JobStatus
from shared.uploads import new_upload_path
from tests.batches.helpers import scheduler_held
from tests.utils.waiting import wait_until


def _upload(root, name: str, age_s: float):
    path = new_upload_path(root, name)
    path.write_bytes(b"\x00" * 16)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _job_with(tenant_name: str, path, status: JobStatus) -> None:
    from shared.domain.tenants import get_or_create_tenant

    with session_scope() as session:
        tenant = get_or_create_tenant(session, tenant_name)
        job = new_job_row(
            tenant.id, JobSpec(prompt="x"), files=[{"path": str(path), "filename": path.name, "size": 16}]
        )
        job.status = status
        session.add(job)


def test_the_sweep_removes_old_files_no_open_job_names(database, tmp_path, settings_env):
    settings_env(REELMILL_UPLOADS_DIR=str(tmp_path), REELMILL_UPLOADS_MAX_AGE_S="3600")
    live = _upload(tmp_path, "live.mp4", age_s=7200)
    ended = _upload(tmp_path, "ended.mp4", age_s=7200)
    stray = _upload(tmp_path, "stray.mp4", age_s=7200)
    young = _upload(tmp_path, "young.mp4", age_s=60)
    _job_with("orphans", live, JobStatus.processing)
    _job_with("orphans", ended, JobStatus.succeeded)
    orphans._last_run = 0.0
    assert orphans.sweep_orphan_uploads(now=time.time()) == 2
    assert live.exists() and young.exists()
    assert not ended.exists() and not stray.exists() and not stray.parent.exists(), "its folder goes with it"
    assert orphans.sweep_orphan_uploads(now=time.time()) == 0, "at most every EVERY_S seconds"
    assert get_settings().uploads_max_age_s == 3600


def test_a_job_canceled_before_it_started_frees_its_files(api, tenant):
    with scheduler_held():  # nobody admits it: it is canceled while it waits
        files = {"job": (None, '{"prompt": "a lighthouse"}', "application/json"), "files": ("clip.mp4", b"\x00" * 64)}
        made = api.post("/v1/jobs", files=files, headers=tenant.headers)
        assert made.status_code == 201, made.text
        job = made.json()
        from shared.tables import Job

        with session_scope() as session:
            path = session.get(Job, job["id"]).files[0]["path"]
        assert os.path.exists(path)
        canceled = api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.headers).json()
    assert canceled["status"] == "canceled"
    wait_until(lambda: not os.path.exists(path), what="the upload freed")

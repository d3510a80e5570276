"""`reelmill download` and `reelmill batch download` against a real `reelmill api` process: checksums verified,
resumable, a batch named by external_id, and a clear exit code when a video is not there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.artifacts.helpers import succeeded_job, wait_artifact
from tests.cli.conftest import Cli, api_server  # noqa: F401  (the fixture: a real API process)
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stack_ready")]


@pytest.fixture()
def cli(api_server: str, tenant, tmp_path: Path) -> Cli:  # noqa: F811
    return Cli(api_server, tenant.key, tmp_path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verifies_resumes_and_skips_what_is_there(api, tenant, sim, cli: Cli, tmp_path: Path):
    sim.configure(output_bytes=3_000_000)
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    artifact = job["output"]["artifact"]
    out = tmp_path / "video.mp4"
    first = cli.run("download", job["id"], "-o", str(out))
    assert first.returncode == 0, first.stderr
    assert sha(out) == artifact["sha256"] and f"saved {out}" in first.stderr.replace("\n", "")

    again = cli.run("download", job["id"], "-o", str(out))
    assert again.returncode == 0 and "already there" in again.stderr

    # a partial download is continued, not restarted: a corrupt head is caught by the checksum, then removed
    good = out.read_bytes()
    out.unlink()
    part = tmp_path / "video.mp4.part"
    part.write_bytes(b"\xff" * 1_000_000)
    corrupt = cli.run("download", job["id"], "-o", str(out))
    assert corrupt.returncode == 1 and "is not the stored" in corrupt.stderr, corrupt.stderr
    assert not part.exists() and not out.exists()
    part.write_bytes(good[:1_234_567])
    resumed = cli.run("download", job["id"], "-o", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == good and not part.exists()


def test_download_of_a_video_that_is_not_stored_says_why(api, tenant, sim, cli: Cli):
    sim.configure(output_body="html")
    job = wait_artifact(api, tenant, succeeded_job(api, tenant)["id"])
    result = cli.run("download", job["id"])
    assert result.returncode == 1
    assert "video is failed: the upstream's file is not an MP4" in " ".join(result.stderr.split())
    missing = cli.run("download", "job_does_not_exist")
    assert missing.returncode == 2 and "no job" in missing.stderr


def test_batch_download_names_files_by_external_id_in_parallel(api, tenant, cli: Cli, tmp_path: Path):
    body = "prompt,external_id\nA fox at dawn,fox/dawn\nA fox at dusk,fox-dusk\nA fox at noon,\n"
    files = {"file": ("jobs.csv", body.encode(), "text/csv")}
    batch = api.post("/v1/batches", files=files, headers=tenant.headers).json()

    def stored():
        jobs = api.get(f"/v1/batches/{batch['id']}/jobs", headers=tenant.headers).json()["data"]
        done = [j for j in jobs if ((j.get("output") or {}).get("artifact") or {}).get("status") == "stored"]
        return jobs if len(done) == 3 else None

    jobs = wait_until(stored, 120, "the batch's videos")
    target = tmp_path / "videos"
    result = cli.run("batch", "download", batch["id"], str(target), "--parallel", "3")
    assert result.returncode == 0, result.stderr
    unnamed = next(j for j in jobs if not j["external_id"])
    expected = {"fox_dawn.mp4": "fox/dawn", "fox-dusk.mp4": "fox-dusk", f"{unnamed['id']}.mp4": None}
    assert sorted(p.name for p in target.iterdir()) == sorted(expected)
    by_ext = {j["external_id"]: j for j in jobs}
    for name, ext in expected.items():
        assert sha(target / name) == by_ext[ext]["output"]["artifact"]["sha256"], name
    assert "3 videos in" in " ".join(result.stderr.split())
    rerun = cli.run("batch", "download", batch["id"], str(target))
    assert rerun.returncode == 0 and "3 videos in" in " ".join(rerun.stderr.split())

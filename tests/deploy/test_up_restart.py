"""Stopping loses nothing: `reelmill up --sim` stopped with Ctrl-C in the middle of a batch (some jobs rendering,
with a short warm-shutdown window so running steps are cut), then started again on the same data dir, finishes
the batch with every job `succeeded` within a minute of the restart. The broker's data, the simulator's state,
the Flower password and the dev key all survive; the leases of the killed workers are freed at start.

Needs the simulator's state file (REELMILL_SIM_STATE_FILE, the `sim` branch): until it is there, the simulator
forgets its renders on restart and the test is expected to fail (strict xfail, so it turns green by itself)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from services.nemo_sim.config import SimConfig
from tests.deploy.up_runner import BANNER, Up

pytestmark = pytest.mark.slow
ROWS = 6
SIM_KEEPS_STATE = "state_file" in SimConfig.model_fields


def headers(stack: Up) -> dict[str, str]:
    return {"Authorization": f"Bearer {(stack.data_dir / 'dev-api-key').read_text().strip()}"}


def batch_of(stack: Up, batch_id: str) -> dict:
    resp = httpx.get(f"{stack.api}/v1/batches/{batch_id}", headers=headers(stack), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_batch(stack: Up, batch_id: str, done, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = batch_of(stack, batch_id)
        if done(batch):
            return batch
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s: {batch_of(stack, batch_id)}\n{unfinished(stack, batch_id)}")


def unfinished(stack: Up, batch_id: str) -> str:
    """What a failure needs to be read: each unfinished job as the API shows it, and every log line naming it."""
    page = httpx.get(f"{stack.api}/v1/batches/{batch_id}/jobs", headers=headers(stack), timeout=30).json()
    lines = []
    for job in page["data"]:
        if job["status"] in ("succeeded", "failed", "canceled"):
            continue
        lines.append(str(job))
        for log in sorted((stack.data_dir / "logs").glob("*.log*")):
            text = log.read_text(errors="replace")
            lines += [f"{log.name}: {line}" for line in text.splitlines() if job["id"] in line]
    return "\n".join(lines)[-12000:] + "\n" + stack.output()[-3000:]


def submit_batch(stack: Up, tmp_path: Path) -> str:
    csv = tmp_path / "batch.csv"
    csv.write_text("prompt\n" + "".join(f"a lighthouse at dusk take {i}\n" for i in range(ROWS)))
    with csv.open("rb") as fh:
        files = {"file": ("batch.csv", fh, "text/csv")}
        resp = httpx.post(f"{stack.api}/v1/batches", headers=headers(stack), files=files, timeout=60)
    assert resp.status_code in (200, 201, 202), resp.text
    return resp.json()["id"]


def warm_up(stack: Up) -> None:
    """One job first, so the upstream token exists before the batch (on SQLite, a batch that is the very first
    upstream call fails with "database is locked": the token is written from a second connection while the
    batch's transaction holds the write lock; reported to the lead)."""
    made = httpx.post(f"{stack.api}/v1/jobs", headers=headers(stack), json={"prompt": "warm up"}, timeout=60)
    assert made.status_code in (200, 201, 202), made.text
    url = f"{stack.api}/v1/jobs/{made.json()['id']}"
    deadline = time.monotonic() + 120
    while httpx.get(url, headers=headers(stack), timeout=30).json()["status"] != "succeeded":
        assert time.monotonic() < deadline, stack.output()[-3000:]
        time.sleep(0.5)


def stop(stack: Up) -> None:
    stack.signal(signal.SIGINT)
    assert stack.wait(120) == 0, stack.output()[-3000:]


@pytest.mark.xfail(not SIM_KEEPS_STATE, reason="the simulator keeps no state file yet (sim branch)", strict=True)
def test_a_restart_in_the_middle_of_a_batch_loses_nothing(tmp_path: Path) -> None:
    first = Up(tmp_path / "data", extra_env={"REELMILL_SIM_TIME_SCALE": "0.1"}, extra_args=["--stop-timeout", "2"])
    first.start()
    try:
        first.wait_for(BANNER, timeout=120)
        password = first.banner_value(r"user admin, password (\S+) kept in")
        warm_up(first)
        batch_id = submit_batch(first, tmp_path)
        running = wait_batch(
            first, batch_id, lambda b: b["counts"].get("processing", 0) >= 1, 120, "no job was processing"
        )
        assert running["counts"].get("succeeded", 0) < ROWS
        stop(first)
    finally:
        first.kill()

    second = first.again()
    second.start()
    try:
        second.wait_for(BANNER, timeout=120)
        restarted = time.monotonic()
        assert second.banner_value(r"user admin, password (\S+) kept in") == password
        final = wait_batch(second, batch_id, lambda b: b["status"] == "completed", 60, "the batch did not complete")
        assert final["counts"]["succeeded"] == ROWS, final
        assert time.monotonic() - restarted <= 60
        stop(second)
    finally:
        second.kill()

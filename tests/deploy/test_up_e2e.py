"""End to end on one machine, as a new user would run it: `reelmill up --sim` on free ports, a job submitted with
the banner's own command lines run as printed, its video URL, its events on the terminal, Flower listing the
workers and the job's tasks, `/metrics` counting it, then SIGINT and no process left behind."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.up_runner import BANNER, Up, clean_env, gone

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
JOB_SUCCEEDED = re.compile(r'^reelmill_jobs\w*\{[^}]*status="succeeded"[^}]*\}\s+([0-9.e+]+)$', re.M)


def submit_as_printed(stack: Up) -> subprocess.CompletedProcess:
    """Run the banner's `export ...` and `... submit ... --wait` lines exactly as printed, in a shell started from the
    checkout (where a user who ran `make run` is), with no REELMILL_* of ours."""
    lines = stack.output().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "try:")
    export, command = lines[start + 1].strip(), lines[start + 2].strip()
    assert export.startswith("export REELMILL_API_URL=") and " submit " in command and command.endswith("--wait")
    env = clean_env(stack.data_dir, REELMILL_CLI_POLL_S="0.3", COLUMNS="200")
    script = f"{export}\n{command}\n"
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def flower_json(stack: Up, password: str, path: str, wanted, timeout: float = 30.0):
    """GET a Flower API path until ``wanted(body)`` holds (events reach Flower asynchronously)."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        resp = httpx.get(f"{stack.flower}{path}", auth=("admin", password), timeout=20)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if wanted(body):
            return body
        time.sleep(0.5)
    pytest.fail(f"Flower {path} never showed what was expected: {str(body)[:2000]}")


def job_counted(stack: Up) -> float:
    resp = httpx.get(f"{stack.api}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text[:500]
    return sum(float(v) for v in JOB_SUCCEEDED.findall(resp.text))


@pytest.fixture()
def stack(tmp_path: Path):
    running = Up(tmp_path / "data", extra_env={"REELMILL_SIM_TIME_SCALE": "0.01", "REELMILL_RENDER_POLL_S": "0.5"})
    running.start()
    try:
        running.wait_for(BANNER, timeout=120)
        yield running
    finally:
        running.kill()


def test_a_job_end_to_end_through_reelmill_up(stack: Up) -> None:
    password = stack.banner_value(r"user admin, password (\S+) kept in")
    children = stack.descendants()

    done = submit_as_printed(stack)
    assert done.returncode == 0, done.stdout + done.stderr + stack.output()[-3000:]
    job_id = re.search(r"job (job_\w+)", done.stdout).group(1)
    video = re.search(r"succeeded (https?://\S+)", done.stdout)
    assert video, done.stdout
    assert httpx.URL(video.group(1)).host == "127.0.0.1"  # the simulator's media, never the internet
    head = httpx.get(video.group(1), timeout=10)
    assert head.status_code == 200 and len(head.content) > 0

    workers = flower_json(stack, password, "/api/workers?refresh=1", lambda b: len(b) >= 3)
    assert sorted(name.split("@")[0] for name in workers) == ["steps", "streams", "webhooks+artifacts"]
    tasks = flower_json(stack, password, "/api/tasks", lambda b: any(job_id in str(t.get("args")) for t in b.values()))
    ran = {t["name"] for t in tasks.values() if job_id in str(t.get("args"))}
    assert {"reelmill.advance", "reelmill.stream"} <= ran
    assert job_counted(stack) >= 1
    stack.wait_for(f"job {job_id} succeeded http://127.0.0.1:", timeout=30)  # one line per job event
    assert f"job {job_id} started: 'a paper boat sailing down a rainy street'" in stack.output()

    stack.signal(signal.SIGINT)
    assert stack.wait(90) == 0
    assert gone(children) == []

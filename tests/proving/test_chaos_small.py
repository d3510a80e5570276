"""The chaos benchmark, small: 30 jobs through the production roles (own PostgreSQL, own Redis) while the simulator
faults 10% of the calls of every retryable class and reelmill's processes are killed, flushed and restarted in
turn (bench/chaos.py). It must report the target met: nothing lost or stuck, no duplicate message or render, no
failure a retry could have fixed; and every kind of process fault must have happened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.stack import ROOT

pytestmark = pytest.mark.slow
PROCESS_FAULTS = {"kill_streams", "flushall", "kill_steps", "kill_api", "restart_redis", "restart_postgres"} | {
    "kill_beat"
}


@pytest.mark.heavy  # never beside another heavy test (tests/utils/heavy.py)
@pytest.mark.timeout(1200)  # a few minutes on two busy cores; the benchmark stops its own processes at 900 s
def test_chaos_small(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    # Every kind of process fault fires within the first minute (one every 3 s, in turn); after two minutes of
    # chaos the run drains, so a loaded machine takes a few minutes, not the benchmark's ten.
    args = ["--jobs", "30", "--fault-every", "3", "--chaos-max-s", "120", "--spread-s", "15"]
    args += ["--message-s", "300", "--render-s", "300"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), *args, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the benchmark stops every process it started
        stdout, stderr = proc.communicate(timeout=180)
    assert out.exists(), stdout[-3000:] + stderr[-3000:]
    report = json.loads(out.read_text())
    results = report["results"]
    assert proc.returncode == 0 and report["target"]["met"], report["target"]
    assert (results["accepted"], results["lost"], results["stuck"]) == (30, 0, 0)
    assert results["succeeded"] + sum(results["failed"].values()) == 30
    assert set(results["failed"]) <= {"session_expired"}, results["failed"]  # a revision whose session is gone
    assert (results["duplicate_messages"], results["duplicate_renders"]) == (0, 0)
    assert set(results["process_faults"]) == PROCESS_FAULTS, results["process_faults"]
    assert not results["process_fault_errors"]
    fired = results["upstream_faults_fired"]
    assert {"http_429", "http_5xx", "token_expired"} <= set(fired), fired

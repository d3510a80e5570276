"""The fairness benchmark, small (bench/fairness.py): tenant A posts a 60-row batch, B 5 single jobs, C a 20-row
batch with `priority: high`, against a simulator that allows 20 concurrent streams per token, through the production
roles (own PostgreSQL, own Redis). At this size the targets that mean something: no job fails, 429s stay under 1% of
the upstream calls, B's first call comes within twice one job's upstream time, and B and C are served before A's
backlog drains (their last stream starts before A's). The slot shares and the throughput need the full size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.stack import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.heavy  # never beside another heavy test (tests/utils/heavy.py)
@pytest.mark.timeout(600)  # about 2 minutes on two busy cores, most of it starting the processes
def test_fairness_small(tmp_path: Path) -> None:
    out = tmp_path / "fairness.json"
    args = ["--a-rows", "60", "--b-jobs", "5", "--c-rows", "20", "--stream-s", "2", "--timeout", "300"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fairness.py"), *args, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=480)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the benchmark stops every process it started
        stdout, stderr = proc.communicate(timeout=120)
    assert out.exists(), stdout[-3000:] + stderr[-3000:]
    report = json.loads(out.read_text())
    res, target = report["results"], report["target"]
    assert res["sampler_error"] is None and res["samples"] > 0
    assert res["jobs"] == 85 and res["statuses"].get("succeeded") == 86  # the crowd and the solo job
    assert target["jobs_failed"]["met"] and res["failed"] == 0
    assert target["share_429"]["met"], res["upstream_429_by_class"]
    assert res["sim_peak_streams"] <= 20  # the pace never asked the upstream for more than K
    assert target["b_first_call_wait_p99_over_one_job"]["met"], (
        res["b_first_call_wait_p99_s"],
        res["one_job_upstream_s"],
    )
    tenants = res["tenants"]
    assert [tenants[n]["seen_streaming"] for n in "ABC"] == [60, 5, 20]  # every job seen holding a slot
    # B's single jobs and C's high-priority batch do not wait behind A's 60 rows
    assert tenants["B"]["last_stream_at_s"] < tenants["A"]["last_stream_at_s"], tenants
    # C's last stream may start a moment after A's when the steps before the stream (not the slots) are what the
    # load holds back, as on two busy cores; behind A's rows, in arrival order, it would start a whole stream time
    # (a round of K slots) after A's last
    assert tenants["C"]["last_stream_at_s"] < tenants["A"]["last_stream_at_s"] + 1.0, tenants

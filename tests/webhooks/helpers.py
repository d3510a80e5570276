"""Webhook test helpers: jobs that sit still (stage `queued`, never dispatched) and events
written through the domain, exactly as the pipeline writes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import select

from shared.db import session_scope
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row
from shared.domain.transitions import job_event
from shared.tables import Delivery, Job, JobStatus, Stage, Tenant
from shared.timeutil import utcnow
from tests.utils.stack import Tenant as TestTenant
from tests.utils.waiting import wait_until
from tests.webhooks.receiver import Receiver


@dataclass
class Hooked:
    """A test tenant with its id and current webhook secret, and a receiver that verifies with that secret."""

    tenant: TestTenant
    tenant_id: str
    secret: str
    rx: Receiver


def tenant_row(name: str) -> Tenant:
    with session_scope() as session:
        return session.exec(select(Tenant).where(Tenant.name == name)).one()


def still_job(tenant_id: str, webhook: str | None, events_filter: list[str] | None = None) -> str:
    """A job row that no worker will run or start, to hang events on: as if a worker held its step for an hour (the
    scheduler admits only waiting jobs; the sweeper resends only jobs whose lease ran out)."""
    spec = JobSpec(prompt="a cat", webhook=webhook, webhook_events_filter=events_filter or ["start", "completed"])
    with session_scope() as session:
        job = new_job_row(tenant_id, spec)
        job.status, job.stage = JobStatus.processing, Stage.verify
        job.lease_owner, job.lease_until = "tests", utcnow() + timedelta(hours=1)
        session.add(job)
        return job.id


def emit_job_event(job_id: str, type: str) -> None:
    with session_scope() as session:
        job = session.exec(select(Job).where(Job.id == job_id)).one()
        job_event(session, job, type)


def deliveries_of(job_id: str) -> list[Delivery]:
    with session_scope() as session:
        return list(session.exec(select(Delivery).where(Delivery.job_id == job_id).order_by(Delivery.created_at)))


def wait_final(job_id: str, count: int, timeout: float = 20.0) -> list[Delivery]:
    """Wait until the job has ``count`` deliveries, none of them pending."""

    def done() -> list[Delivery] | None:
        rows = deliveries_of(job_id)
        return rows if len(rows) == count and all(r.status != "pending" for r in rows) else None

    return wait_until(done, timeout, f"{count} final deliveries of {job_id}")


class RecordingDispatcher:
    """Stands in for Celery in in-process tests: remembers what would have been enqueued."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, float]] = []
        self.jobs: list[tuple[str, int, str]] = []

    def job(self, job_id: str, seq: int, stage: str, countdown: float = 0.0) -> None:
        self.jobs.append((job_id, seq, stage))

    def delivery(self, delivery_id: str, countdown: float = 0.0) -> None:
        self.deliveries.append((delivery_id, countdown))

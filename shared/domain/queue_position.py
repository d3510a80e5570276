"""A waiting job's `queue_position`: 1-based, among its tenant's jobs waiting to start, in the order the scheduler
starts them (services/worker/scheduler.py `_pick_jobs` / `_share_out`):

1. by priority (`high`, `normal`, `low`), a batch counting at its highest priority;
2. within a priority, the tenant's batches and its single jobs ("flows") take turns, the flow whose oldest job is
   oldest first: a single job is not stuck behind its tenant's own 2,000-row batch;
3. within a flow, by priority, then input line (a batch) or age.

A tenant's position counts only its own jobs: other tenants share the capacity by weight (docs/pacing.md). A batch
held at its `max_in_flight` lets the jobs after it pass, so the position is a place in line, not a time. None once
the job started, ended, or while its batch is paused. Computed in one statement (window functions) for one job or
a whole page.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlmodel import Session

from shared.domain.tenant_shares import waiting_to_start
from shared.tables import Batch, Job, JobStatus, Stage


def may_wait(job: Job) -> bool:
    """Whether the job may have a position (the query answers for its batch's state)."""
    return Stage(job.stage) == Stage.queued and JobStatus(job.status) == JobStatus.queued


def queue_positions(session: Session, tenant_id: str, job_ids: Iterable[str]) -> dict[str, int]:
    """Job id -> position, for those of ``job_ids`` that wait to start (the others are absent)."""
    wanted = list(dict.fromkeys(job_ids))
    if not wanted:
        return {}
    flow = Job.batch_id  # single jobs (NULL) are one flow: PARTITION BY groups NULLs together
    flows = (
        select(
            Job.id.label("id"),
            func.min(Job.priority).over(partition_by=flow).label("flow_priority"),
            func.min(Job.id).over(partition_by=flow).label("flow_head"),
            func.row_number().over(partition_by=flow, order_by=(Job.priority, Job.batch_line, Job.id)).label("turn"),
        )
        .select_from(Job)
        .outerjoin(Batch, Batch.id == Job.batch_id)
        .where(Job.tenant_id == tenant_id, waiting_to_start())
        .subquery()
    )
    ranked = select(
        flows.c.id,
        func.row_number().over(order_by=(flows.c.flow_priority, flows.c.turn, flows.c.flow_head)).label("position"),
    ).subquery()
    rows = session.execute(select(ranked.c.id, ranked.c.position).where(ranked.c.id.in_(wanted))).all()
    return {job_id: int(position) for job_id, position in rows}


def queue_position(session: Session, job: Job) -> int | None:
    if not may_wait(job):
        return None
    return queue_positions(session, job.tenant_id, [job.id]).get(job.id)


def page_positions(session: Session, jobs: Iterable[Job]) -> dict[str, int]:
    """Positions for a page of jobs (one statement per tenant on the page: the API's pages are one tenant's)."""
    by_tenant: dict[str, list[str]] = {}
    for job in jobs:
        if may_wait(job):
            by_tenant.setdefault(job.tenant_id, []).append(job.id)
    found: dict[str, int] = {}
    for tenant_id, ids in by_tenant.items():
        found.update(queue_positions(session, tenant_id, ids))
    return found

"""A waiting job's `queue_position`: 1-based, among its tenant's jobs waiting to start, in the order the scheduler
starts them (services/worker/scheduler.py `_pick_jobs` / `_share_out`):

1. by priority (`high`, `normal`, `low`), a batch counting at its highest priority;
2. within a priority, the tenant's batches and its single jobs ("flows") take turns, the flow whose oldest job is
   oldest first: a single job is not stuck behind its tenant's own 2,000-row batch;
3. within a flow, by priority, then input line (a batch) or age.

A tenant's position counts only its own jobs: other tenants share the capacity by weight (docs/pacing.md). A batch
held at its `max_in_flight` lets the jobs after it pass, so the position is a place in line, not a time. None once
the job started, ended, or while its batch is paused. A page's positions come from one statement that ranks the
tenant's waiting jobs (window functions); one job's from one aggregate per flow, which needs no sort.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, bindparam, func, select, tuple_
from sqlmodel import Session

from shared.domain.tenant_shares import waiting_to_start
from shared.tables import Batch, BatchStatus, Job, JobStatus, Stage


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


def _one_job_statement() -> Select[Any]:
    """One aggregate per flow of the tenant's waiting jobs, for the job in the bound parameters. Built once: every
    POST and GET of a job runs it, and building and compiling it again each time cost more CPU than running it."""
    me = tuple_(bindparam("priority"), bindparam("line"), bindparam("job_id"))
    ahead_in_flow = tuple_(Job.priority, func.coalesce(Job.batch_line, -1), Job.id) < me
    same_flow = Job.batch_id.is_not_distinct_from(bindparam("batch_id"))  # singles (NULL) are one flow
    per_flow = (  # grouped first, so the batch's state is looked up once per flow, not once per job
        select(
            Job.batch_id.label("batch_id"),
            func.count().label("waiting"),
            func.min(Job.priority).label("priority"),
            func.min(Job.id).label("head"),
            func.count().filter(same_flow & ahead_in_flow).label("ahead"),
            func.count().filter(Job.id == bindparam("job_id")).label("mine"),
        )
        .where(Job.tenant_id == bindparam("tenant_id"), Job.stage == Stage.queued, Job.status == JobStatus.queued)
        .group_by(Job.batch_id)
        .subquery()
    )
    batches = Batch.__table__  # type: ignore[attr-defined]
    startable = per_flow.c.batch_id.is_(None) | batches.c.status.in_([BatchStatus.queued, BatchStatus.running])
    return (
        select(per_flow).select_from(per_flow.outerjoin(batches, batches.c.id == per_flow.c.batch_id)).where(startable)
    )


_ONE_JOB = _one_job_statement()


def queue_position(session: Session, job: Job) -> int | None:
    """One job's position (`POST /v1/jobs`, `GET /v1/jobs/{id}`), from one aggregate per flow instead of ranking
    every waiting job: the same answer as ``queue_positions``, without its two sorts of the tenant's whole backlog
    (about 20 ms at 5,000 waiting jobs on PostgreSQL, which every POST paid)."""
    if not may_wait(job):
        return None
    params = {
        "tenant_id": job.tenant_id,
        "job_id": job.id,
        "batch_id": job.batch_id,
        "priority": job.priority,
        "line": -1 if job.batch_line is None else job.batch_line,  # singles have no line: by priority, then id
    }
    session.flush()  # a Core execution does not autoflush: the job may have been added just now
    flows = session.connection().execute(_ONE_JOB, params).all()
    mine = next((f for f in flows if f[0] == job.batch_id), None)
    if mine is None or not mine[5]:
        return None  # it started, ended, or its batch is paused since the job was read
    own_priority, own_head, turn = mine[2], mine[3], mine[4] + 1
    place = turn
    for batch_id, count, priority, head, _, _ in flows:
        if batch_id == job.batch_id:
            continue
        if priority < own_priority:  # a flow of a higher priority goes first, all of it
            place += count
        elif priority == own_priority:  # flows of one priority take turns, the oldest head first in each round
            place += min(count, turn - 1) + (1 if count >= turn and head < own_head else 0)
    return int(place)


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

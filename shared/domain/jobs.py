"""Creating, reading, listing and canceling jobs: called by the API routes and the CLI alike."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shared.db.hooks import after_commit
from shared.domain import dispatch
from shared.domain.errors import Conflict, NotFound, ValidationFailed
from shared.domain.job_input import JobSpec
from shared.domain.priority import priority_rank
from shared.domain.transitions import end_job
from shared.ids import is_id, new_id
from shared.settings import get_settings
from shared.tables import Job, JobStatus, JobTurn
from shared.timeutil import as_utc, utcnow


@dataclass(frozen=True)
class Created:
    job: Job
    created: bool  # False when an Idempotency-Key replayed an earlier job
    turns: tuple[JobTurn, ...] = ()  # a new job's turns, as written (none for a replay)


def new_job_row(tenant_id: str, spec: JobSpec, **extra: Any) -> Job:
    return Job(
        id=new_id("job"),
        tenant_id=tenant_id,
        profile=spec.profile,
        prompt=spec.prompt or "",
        assets=list(spec.assets),
        output_format=spec.output.format,
        output_quality=spec.output.quality,
        language=spec.language,
        webhook_url=spec.webhook,
        webhook_events=list(spec.webhook_events_filter),
        meta=dict(spec.metadata),
        priority=priority_rank(spec.priority),
        **extra,
    )


def turn_rows(job_id: str, spec: JobSpec) -> list[JobTurn]:
    return [
        JobTurn(job_id=job_id, seq=i, kind="step", instruction=text, assets=assets, intent="sse")
        for i, (text, assets) in enumerate(spec.turns())
    ]


def create_job(
    session: Session,
    tenant_id: str,
    spec: JobSpec,
    *,
    idempotency_key: str | None = None,
    files: list[dict[str, Any]] | None = None,
    cancel_after_s: float | None = None,
) -> Created:
    """Write a job and its turns. It waits (`queued`) until the scheduler admits it, within its tenant's share of
    NemoVideo's capacity (services/worker/scheduler.py)."""
    request_hash = spec.canonical_hash(json.dumps(files or [], sort_keys=True)) if idempotency_key else None
    if idempotency_key:
        existing = _by_idempotency_key(session, tenant_id, idempotency_key)
        if existing is not None:
            return _replay(existing, request_hash)
    job = new_job_row(
        tenant_id, spec, files=list(files or []), idempotency_key=idempotency_key, request_hash=request_hash
    )
    if cancel_after_s is not None:
        job.deadline_at = job.created_at + timedelta(seconds=cancel_after_s)
    turns = tuple(turn_rows(job.id, spec))
    if idempotency_key is None:
        session.add(job)
        session.add_all(turns)
    else:  # two requests with one key may race: the unique index decides, the loser replays the winner
        try:
            with session.begin_nested():
                session.add(job)
                session.flush()
                session.add_all(turns)
                session.flush()
        except IntegrityError:
            existing = _by_idempotency_key(session, tenant_id, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, request_hash)
    return Created(job=job, created=True, turns=turns)


def enqueue_after_commit(session: Session, job: Job) -> None:
    job_id, seq, stage = job.id, job.step_seq, job.stage
    # if the message is lost, the sweeper sends it again once this passes
    job.lease_until = utcnow() + timedelta(seconds=get_settings().queue_grace_s)

    def send() -> None:
        d = dispatch.current()
        if d is not None:
            d.job(job_id, seq, stage)

    after_commit(session, send)


def _by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    return session.exec(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key)).first()


def _replay(existing: Job, request_hash: str | None) -> Created:
    if existing.request_hash != request_hash:
        raise Conflict("Idempotency-Key was already used with a different request body", field="Idempotency-Key")
    return Created(job=existing, created=False)


def get_job(session: Session, tenant_id: str, job_id: str, *, for_update: bool = False) -> Job:
    if not is_id(job_id, "job"):
        raise NotFound(f"no job {job_id[:60]!r}")
    stmt = select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    job = session.exec(stmt).first()
    if job is None:  # another tenant's job is "not found" too: never confirm it exists
        raise NotFound(f"no job {job_id!r}")
    return job


# ---- listing ---------------------------------------------------------------------------------------------


def encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(job.id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API returned", field="cursor") from None
    if not is_id(raw, "job"):
        raise ValidationFailed("cursor is not one this API returned", field="cursor")
    return raw


def list_jobs(
    session: Session,
    tenant_id: str,
    *,
    status: list[str] | None = None,
    batch_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Job], str | None]:
    """Newest first; ids sort by creation time, so the cursor is simply the last id seen."""
    stmt = select(Job).where(Job.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(Job.status.in_(status))
    if batch_id:
        if not is_id(batch_id, "bat"):
            raise ValidationFailed("batch_id is not a batch id (bat_...)", field="batch_id")
        stmt = stmt.where(Job.batch_id == batch_id)
    if created_after:
        stmt = stmt.where(Job.created_at >= created_after)
    if created_before:
        stmt = stmt.where(Job.created_at < created_before)
    if cursor:
        stmt = stmt.where(Job.id < decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(Job.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


# ---- cancel ----------------------------------------------------------------------------------------------


def cancel_job(session: Session, tenant_id: str, job_id: str) -> tuple[Job, str | None]:
    """Cancel a job. Returns the job and, when a render may be running upstream, its id for the caller to
    cancel there. A job whose step is running right now is flagged; the worker finishes the cancel."""
    job = get_job(session, tenant_id, job_id, for_update=True)
    if JobStatus(job.status).terminal:
        return job, None
    job.cancel_requested = True
    session.add(job)
    lease_until = as_utc(job.lease_until)
    leased = job.lease_owner is not None and lease_until is not None and lease_until > utcnow()
    if leased:
        return job, None
    render_id = _running_render(session, job)
    end_job(session, job, JobStatus.canceled, "canceled", "canceled by the client", render_id=render_id)
    return job, render_id


def _running_render(session: Session, job: Job) -> str | None:
    turn = session.exec(
        select(JobTurn).where(
            JobTurn.job_id == job.id,
            JobTurn.render_id.is_not(None),
            or_(JobTurn.render_status.is_(None), JobTurn.render_status.in_(["pending", "processing"])),
            JobTurn.output.is_(None),
        )
    ).first()
    return turn.render_id if turn else None

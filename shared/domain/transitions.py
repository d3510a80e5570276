"""Job state changes outside the worker's flow (the worker's own go through services/worker/flow.py). Each one
updates the row and writes its event in the same transaction (the outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from shared.artifacts.views import artifacts_for
from shared.domain import job_end
from shared.domain.events import emit, wanted
from shared.domain.views import job_public, load_public
from shared.tables import Job, JobStatus, JobTurn, TurnStatus
from shared.timeutil import utcnow

STATUS_EVENTS = {
    JobStatus.starting: "job.started",
    JobStatus.succeeded: "job.succeeded",
    JobStatus.failed: "job.failed",
    JobStatus.canceled: "job.canceled",
}


def job_event(
    session: Session,
    job: Job,
    type: str,
    data: dict[str, Any] | None = None,
    turns: Sequence[JobTurn] | None = None,
) -> None:
    """Emit ``type`` for ``job``. Status events, and any event a webhook will carry, hold the whole public job
    object (built from ``turns`` when the caller has them); a progress event nobody subscribed to holds just the
    figures (it is the most frequent one)."""
    if data is None and type == "job.progress" and not (job.webhook_url and wanted(type, job.webhook_events)):
        data = {"status": job.status.value, "stage": job.stage.value, "progress": job.progress}
    if data is None:
        data = _public(session, job, turns) if turns is not None else _loaded_public(session, job)
    emit(
        session,
        tenant_id=job.tenant_id,
        type=type,
        data=data,
        job_id=job.id,
        batch_id=job.batch_id,
        webhook_url=job.webhook_url,
        webhook_filter=job.webhook_events,
    )


def _public(session: Session, job: Job, turns: Sequence[JobTurn]) -> dict[str, Any]:
    if job.output is None and not any(t.output for t in turns):
        return job_public(job, turns, {})  # an artifact copies an output and shows on it: with none, none to look up
    session.flush()  # an artifact planned in this transaction shows as pending
    return job_public(job, turns, artifacts_for(session, [job.id])[job.id])


def _loaded_public(session: Session, job: Job) -> dict[str, Any]:
    session.flush()
    return load_public(session, job)


def end_job(
    session: Session, job: Job, status: JobStatus, code: str | None, message: str | None, *, render_id: str | None
) -> None:
    """End a job no worker holds (a cancel, a deadline): the job, every turn still open, its event; after commit
    its render is canceled upstream, its files freed, its batch settled."""
    now = utcnow()
    job.status, job.updated_at, job.completed_at = status, now, now
    job.lease_owner = job.lease_until = None
    job.error_code, job.error_message = code, message
    session.add(job)
    turn_status = TurnStatus(status.value) if status != JobStatus.succeeded else TurnStatus.succeeded
    session.exec(  # type: ignore[call-overload]
        update(JobTurn)
        .where(JobTurn.job_id == job.id, JobTurn.status.in_([TurnStatus.pending, TurnStatus.running]))
        .values(status=turn_status, completed_at=now, error_code=code, error_message=message)
    )
    if status in STATUS_EVENTS:
        job_event(session, job, STATUS_EVENTS[status])
    job_end.after_job_end(session, job, cancel_render=render_id)

"""Job state changes. Each one updates the row and writes its event in the same transaction (the outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from shared.artifacts.views import artifacts_for
from shared.domain.events import emit, wanted
from shared.domain.views import job_public, load_public
from shared.settings import get_settings
from shared.tables import Job, JobStatus, JobTurn
from shared.timeutil import as_utc, utcnow

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
        data = {"status": job.status, "stage": job.stage, "progress": job.progress}
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
    session.flush()  # an artifact planned in this transaction shows as pending
    return job_public(job, turns, artifacts_for(session, [job.id])[job.id])


def _loaded_public(session: Session, job: Job) -> dict[str, Any]:
    session.flush()
    return load_public(session, job)


def set_status(
    session: Session, job: Job, status: JobStatus, turns: Sequence[JobTurn] | None = None, **fields: Any
) -> None:
    now = utcnow()
    job.status = status.value
    job.updated_at = now
    for name, value in fields.items():
        setattr(job, name, value)
    if status == JobStatus.starting and job.started_at is None:
        job.started_at = now
    if status.terminal:
        job.completed_at = now
        job.lease_owner = None
        job.lease_until = None
    session.add(job)
    if status in STATUS_EVENTS:
        job_event(session, job, STATUS_EVENTS[status], turns=turns)


def fail(session: Session, job: Job, code: str, message: str) -> None:
    set_status(session, job, JobStatus.failed, error_code=code, error_message=message)


def set_stage(session: Session, job: Job, stage: str, progress: int | None = None) -> None:
    if job.stage == stage and (progress is None or progress == job.progress):
        return
    job.stage = stage
    if progress is not None:
        job.progress = max(job.progress, min(progress, 100))
    job.updated_at = utcnow()
    session.add(job)
    job_event(session, job, "job.stage", {"stage": stage, "progress": job.progress})


def report_progress(session: Session, job: Job, progress: int, turns: Sequence[JobTurn] | None = None) -> None:
    """Raise the job's progress; a `job.progress` event goes out at most once per job every few seconds."""
    progress = max(job.progress, min(progress, 99))
    if progress == job.progress:
        return
    job.progress = progress
    job.updated_at = now = utcnow()
    last = as_utc(job.last_progress_event_at)
    if last is None or (now - last).total_seconds() >= get_settings().progress_event_min_s:
        job.last_progress_event_at = now
        job_event(session, job, "job.progress", turns=turns)
    session.add(job)

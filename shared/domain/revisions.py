"""Follow-up messages on a job: each one is a new turn (a revision) in the job's upstream session.

On a finished job the message reopens it: the session keeps the timeline, so the instruction edits it and a new
render follows. On a running job the message waits behind the running turn, in order. A message that is one of
the seeds' intents (export, status, credits, upload) runs that action without an SSE call.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from shared.domain.errors import Conflict
from shared.domain.jobs import enqueue_after_commit, get_job
from shared.domain.transitions import job_event
from shared.nemo.intents import route_intent
from shared.settings import get_settings
from shared.tables import Job, JobStatus, JobTurn, Stage
from shared.timeutil import utcnow


def add_message(session: Session, tenant_id: str, job_id: str, text: str, assets: list[str]) -> tuple[Job, JobTurn]:
    job = get_job(session, tenant_id, job_id, for_update=True)
    if job.status == JobStatus.canceled.value:
        raise Conflict("the job was canceled; start a new job instead", field="job")
    if job.status == JobStatus.failed.value and not job.session_id:
        raise Conflict("the job failed before it had an upstream session; start a new job instead", field="job")
    if job.batch_id and not JobStatus(job.status).terminal:
        raise Conflict("a batch job takes follow-up messages once it has finished", field="job")
    count = int(session.exec(select(func.count()).select_from(JobTurn).where(JobTurn.job_id == job.id)).one())
    limit = get_settings().max_turns_per_job
    if count >= limit:
        raise Conflict(
            f"the job has reached the limit of {limit} turns (its steps and follow-up messages); "
            "start a new job to go on",
            field="job",
        )
    intent = route_intent(text, has_files=bool(assets))
    turn = JobTurn(job_id=job.id, seq=count, kind="revision", instruction=text, assets=assets, intent=intent.value)
    session.add(turn)
    session.flush()
    if JobStatus(job.status).terminal:
        _reopen(session, job, turn)
    job_event(session, job, "job.revision", {"index": turn.seq, "instruction": text, "intent": intent.value})
    return job, turn


def _reopen(session: Session, job: Job, turn: JobTurn) -> None:
    """Send a finished job back into the flow at its session stage: the session is kept, so the flow goes straight
    on to the new turn's first stage. The job is `processing` again, and its progress is the new revision's."""
    job.status = JobStatus.processing
    job.stage = Stage.session
    job.progress = 0
    job.turn_index = turn.seq
    job.completed_at = None
    job.error_code = job.error_message = None
    job.attempts = 0
    job.step_seq += 1
    job.cancel_requested = False
    job.updated_at = utcnow()
    session.add(job)
    enqueue_after_commit(session, job)

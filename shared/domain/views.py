"""The public job object: exactly what `GET /v1/jobs/{id}` returns and what webhooks carry as `data`.

A job can grow to `max_turns_per_job` turns, so the object carries only its latest `REVISIONS_INLINE` revisions
(and the messages of those); `revisions_total` says how many there are, and `GET /v1/jobs/{id}/revisions` pages
through all of them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from shared.artifacts.views import ArtifactsByTurn, artifacts_for, job_artifact, with_artifact
from shared.domain.errors import ValidationFailed
from shared.domain.queue_position import queue_position
from shared.settings import get_settings
from shared.tables import Job, JobTurn
from shared.timeutil import iso


def job_urls(job_id: str) -> dict[str, str]:
    base = get_settings().public_url.rstrip("/") + f"/v1/jobs/{job_id}"
    return {
        "get": base,
        "cancel": f"{base}/cancel",
        "events": f"{base}/events",
        "messages": f"{base}/messages",
        "timeline": f"{base}/timeline",
        "output": f"{base}/output",
        "revisions": f"{base}/revisions",
        "deliveries": f"{base}/deliveries",
    }


def turn_public(turn: JobTurn, artifacts: ArtifactsByTurn | None = None) -> dict[str, Any]:
    error = {"code": turn.error_code, "message": turn.error_message} if turn.error_code else None
    return {
        "index": turn.seq,
        "kind": turn.kind,
        "instruction": turn.instruction,
        "assets": list(turn.assets or []),
        "status": turn.status,
        "messages": list(turn.messages or []),
        "timeline": turn.timeline,
        "output": with_artifact(turn.output, (artifacts or {}).get(turn.seq)),
        "error": error,
        "suggested_job": turn.suggested_job,
        "intent": turn.intent,
        "created_at": iso(turn.created_at),
        "completed_at": iso(turn.completed_at),
    }


REVISIONS_INLINE = 20


def job_public(
    job: Job,
    turns: Sequence[JobTurn],
    artifacts: ArtifactsByTurn | None = None,
    *,
    turn_count: int | None = None,
    queue_position: int | None = None,
) -> dict[str, Any]:
    """The job as the API shows it. ``turns``: the job's turns, or at least its latest REVISIONS_INLINE (then
    ``turn_count`` says how many there are in all); ``artifacts`` (turn seq -> row) fills each output's
    `artifact`; ``queue_position``: its place among its tenant's waiting jobs (shared/domain/queue_position.py),
    None once it started (and in webhooks, which do not compute it)."""
    ordered = sorted(turns, key=lambda t: t.seq)[-REVISIONS_INLINE:]
    timeline = next((t.timeline for t in reversed(ordered) if t.timeline), None)
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    return {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "queue_position": queue_position,
        "progress": job.progress,
        "profile": job.profile,
        "prompt": job.prompt,
        "language": job.language,
        "assets": list(job.assets or []),
        "files": [{"filename": f["filename"], "size": f["size"]} for f in job.files or []],
        "output": with_artifact(job.output, job_artifact(job.output, artifacts or {})),
        "messages": [m for t in ordered for m in (t.messages or [])],
        "timeline": timeline,
        "error": error,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "metadata": job.meta or {},
        "batch_id": job.batch_id,
        "external_id": job.external_id,
        "webhook": job.webhook_url,
        "webhook_events_filter": list(job.webhook_events or []),
        "revisions": [turn_public(t, artifacts) for t in ordered],
        "revisions_total": max(turn_count or 0, len(turns)),
        "urls": job_urls(job.id),
    }


def turns_for(session: Session, job_ids: Iterable[str]) -> dict[str, list[JobTurn]]:
    """Every turn of each job (a page of jobs: each has at most `max_turns_per_job`)."""
    ids = list(job_ids)
    found: dict[str, list[JobTurn]] = {i: [] for i in ids}
    if not ids:
        return found
    for turn in session.exec(select(JobTurn).where(JobTurn.job_id.in_(ids)).order_by(JobTurn.seq)):
        found[turn.job_id].append(turn)
    return found


def load_public(session: Session, job: Job, *, position: bool = False) -> dict[str, Any]:
    """The job object, reading only its latest revisions; with ``position``, its `queue_position` too (one more
    statement while it waits)."""
    newest_first = select(JobTurn).where(JobTurn.job_id == job.id).order_by(JobTurn.seq.desc())
    latest = list(session.exec(newest_first.limit(REVISIONS_INLINE)))
    count = len(latest)
    if count == REVISIONS_INLINE:
        count = int(session.exec(select(func.count()).select_from(JobTurn).where(JobTurn.job_id == job.id)).one())
    place = queue_position(session, job) if position else None
    return job_public(job, latest, artifacts_for(session, [job.id])[job.id], turn_count=count, queue_position=place)


def created_public(session: Session, job: Job, turns: Sequence[JobTurn]) -> dict[str, Any]:
    """A job written in the caller's transaction, before it commits: its turns are at hand and it has no artifact
    yet, so only its queue position is read (one statement, where load_public needs three)."""
    return job_public(job, turns, {}, turn_count=len(turns), queue_position=queue_position(session, job))


def list_revisions(
    session: Session, job: Job, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """The job's revisions in order, a page at a time; the cursor is the last index seen."""
    stmt = select(JobTurn).where(JobTurn.job_id == job.id)
    if cursor:
        stmt = stmt.where(JobTurn.seq > _decode_index(cursor))
    rows = list(session.exec(stmt.order_by(JobTurn.seq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_index(rows[-1].seq) if more and rows else None
    artifacts = artifacts_for(session, [job.id])[job.id]
    return [turn_public(t, artifacts) for t in rows], next_cursor


def _encode_index(seq: int) -> str:
    return base64.urlsafe_b64encode(f"rev:{seq}".encode()).decode().rstrip("=")


def _decode_index(cursor: str) -> int:
    try:
        kind, _, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind != "rev" or not seq.isascii() or not seq.isdigit() or len(seq) > 9:
            raise ValueError(cursor)
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API returned", field="cursor") from None

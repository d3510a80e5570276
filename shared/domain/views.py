"""The public job object: exactly what `GET /v1/jobs/{id}` returns and what webhooks carry as `data`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session, select

from shared.artifacts.views import ArtifactsByTurn, artifacts_for, job_artifact, with_artifact
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


def job_public(job: Job, turns: Sequence[JobTurn], artifacts: ArtifactsByTurn | None = None) -> dict[str, Any]:
    """The job as the API shows it; ``artifacts`` (turn seq -> row) fills each output's `artifact`."""
    ordered = sorted(turns, key=lambda t: t.seq)
    timeline = next((t.timeline for t in reversed(ordered) if t.timeline), None)
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    return {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
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
        "urls": job_urls(job.id),
    }


def turns_for(session: Session, job_ids: Iterable[str]) -> dict[str, list[JobTurn]]:
    ids = list(job_ids)
    found: dict[str, list[JobTurn]] = {i: [] for i in ids}
    if not ids:
        return found
    for turn in session.exec(select(JobTurn).where(JobTurn.job_id.in_(ids)).order_by(JobTurn.seq)):
        found[turn.job_id].append(turn)
    return found


def load_public(session: Session, job: Job) -> dict[str, Any]:
    return job_public(job, turns_for(session, [job.id])[job.id], artifacts_for(session, [job.id])[job.id])

"""The public `artifact` object that a job's `output` (and each revision's) carries, and the rows behind it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, select

from shared.settings import get_settings
from shared.tables import Artifact, ArtifactStatus
from shared.timeutil import iso

ArtifactsByTurn = Mapping[int, Artifact]


def output_url(job_id: str, turn_seq: int) -> str:
    return f"{get_settings().public_url.rstrip('/')}/v1/jobs/{job_id}/output?revision={turn_seq}"


def artifact_public(row: Artifact | None) -> dict[str, Any] | None:
    if row is None:
        return None
    stored = row.status == ArtifactStatus.stored.value
    return {
        "status": row.status,
        "url": output_url(row.job_id, row.turn_seq) if stored else None,
        "sha256": row.sha256,
        "size": row.size,
        "content_type": row.content_type,
        "stored_at": iso(row.stored_at),
        "expires_at": iso(row.expires_at),
        "reason": row.reason if row.status != ArtifactStatus.stored.value else None,
    }


def with_artifact(output: dict[str, Any] | None, row: Artifact | None) -> dict[str, Any] | None:
    """``output`` (a turn's or the job's) with its `artifact`; None stays None."""
    if output is None:
        return None
    return {**output, "artifact": artifact_public(row)}


def job_artifact(output: dict[str, Any] | None, artifacts: ArtifactsByTurn) -> Artifact | None:
    """The artifact of the job's output: the one of the same render (the job's output is its latest turn's)."""
    render_id = (output or {}).get("render_id")
    return next((a for a in artifacts.values() if render_id and a.render_id == render_id), None)


def artifacts_for(session: Session, job_ids: Iterable[str]) -> dict[str, dict[int, Artifact]]:
    ids = list(job_ids)
    found: dict[str, dict[int, Artifact]] = {i: {} for i in ids}
    if ids:
        for row in session.exec(select(Artifact).where(Artifact.job_id.in_(ids))):
            found[row.job_id][row.turn_seq] = row
    return found

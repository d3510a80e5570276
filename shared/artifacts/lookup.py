"""Finding the artifact a client asks for (`GET /v1/jobs/{id}/output[?revision=N]`), as domain errors when it
cannot be served: 404 no such job (another tenant's included) or revision, 409 not stored yet or failed (with
the reason), 410 deleted by retention, 503 the store is unreachable."""

from __future__ import annotations

from sqlmodel import Session, select

from shared.artifacts.views import job_artifact
from shared.domain.errors import Conflict, DomainError, NotFound
from shared.domain.jobs import get_job
from shared.tables import Artifact, ArtifactStatus, JobTurn


class ArtifactGone(DomainError):
    status_code = 410
    code = "artifact_expired"


class ArtifactStoreDown(DomainError):
    status_code = 503
    code = "artifact_store_unavailable"


def find_artifact(session: Session, tenant_id: str, job_id: str, revision: int | None) -> Artifact:
    """The stored artifact of the job's output (or of its turn ``revision``)."""
    job = get_job(session, tenant_id, job_id)
    rows = {a.turn_seq: a for a in session.exec(select(Artifact).where(Artifact.job_id == job.id))}
    if revision is None:
        row = job_artifact(job.output, rows)
        if row is None:
            raise NotFound(f"job {job_id} has no stored output yet (status: {job.status})", field="job")
    else:
        row = rows.get(revision)
        if row is None:
            _no_revision(session, job_id, revision)
    return _servable(row)


def _no_revision(session: Session, job_id: str, revision: int) -> None:
    exists = session.exec(select(JobTurn.id).where(JobTurn.job_id == job_id, JobTurn.seq == revision)).first()
    if exists is None:
        raise NotFound(f"job {job_id} has no revision {revision}", field="revision")
    raise NotFound(f"revision {revision} of job {job_id} has no output (no render)", field="revision")


def _servable(row: Artifact) -> Artifact:
    if row.status == ArtifactStatus.stored.value:
        return row
    if row.status == ArtifactStatus.expired.value:
        raise ArtifactGone("the stored output was deleted: it passed the artifact retention period")
    if row.status == ArtifactStatus.failed.value:
        raise Conflict(f"the output could not be stored: {row.reason}", field="artifact")
    retrying = f" (attempt {row.attempts} failed: {row.reason})" if row.reason else ""
    raise Conflict(f"the output is still being copied to the artifact store{retrying}; try again shortly")

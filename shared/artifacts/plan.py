"""`plan_mirror`: the one call the job engine makes when a turn's render completes.

It runs inside the transaction that records the turn's output: it adds the turn's artifact row (pending) once,
and sends the mirror task after that transaction commits. It makes no network call and never raises for a
store that is down, so recording an output never waits for, or fails because of, the artifact store.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, select

from shared.artifacts.keys import artifact_key
from shared.db.hooks import after_commit
from shared.domain import dispatch
from shared.ids import new_id
from shared.settings import get_settings
from shared.tables import Artifact, ArtifactStatus, Job, JobTurn
from shared.timeutil import utcnow

log = logging.getLogger(__name__)


def plan_mirror(session: Session, job: Job, turn: JobTurn) -> None:
    """Plan the copy of ``turn``'s render output (idempotent: a turn has one artifact row)."""
    output = turn.output or {}
    render_id = output.get("render_id") or turn.render_id
    settings = get_settings()
    store_url = settings.effective_artifact_store
    if not render_id or store_url == "none":
        return
    found = session.exec(select(Artifact).where(Artifact.job_id == job.id, Artifact.turn_seq == turn.seq)).first()
    if found is not None and found.render_id == render_id:
        return  # planned already: the same output recorded again
    now = utcnow()
    row = found or Artifact(id=new_id("art"), job_id=job.id, tenant_id=job.tenant_id, turn_seq=turn.seq)
    row.render_id = render_id
    row.source_url = output.get("url")
    row.status, row.reason, row.sha256, row.size = ArtifactStatus.pending.value, None, None, None
    row.content_type, row.stored_at, row.expires_at = None, None, None
    row.store_url = store_url
    row.key = artifact_key(job.tenant_id, job.id, turn.seq)
    row.attempts, row.next_attempt_at, row.updated_at = 0, now, now
    row.lease_owner, row.lease_until = None, now + timedelta(seconds=settings.queue_grace_s)
    session.add(row)
    send_after_commit(session, row.id, 0.0)
    log.info("artifact %s planned for job %s turn %s", row.id, job.id, turn.seq)


def send_after_commit(session: Session, artifact_id: str, countdown: float) -> None:
    def send() -> None:
        d = dispatch.current()
        if d is not None:
            d.artifact(artifact_id, countdown)

    after_commit(session, send)

"""An artifact row through one mirror attempt: claim it (a lease, one attempt more), renew the lease while the
bytes flow (and learn of a cancel), then settle it: stored, retried later, or failed. Each step is one
transaction; settling writes the `job.artifact.*` event in the same one (the outbox)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from shared.artifacts.errors import LeaseLost, MirrorCanceled, MirrorError
from shared.artifacts.plan import send_after_commit
from shared.artifacts.source import SourceSpec
from shared.artifacts.transfer import Copied
from shared.db import session_scope
from shared.domain.transitions import job_event
from shared.settings import Settings, get_settings
from shared.tables import Artifact, ArtifactStatus, Job, JobStatus
from shared.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)
EARLY_SLACK_S = 2.0  # a message this early for its retry still runs (clocks and ETAs are not exact)
CANCELED = "the job was canceled while its output was being copied"


@dataclass(frozen=True)
class Claim:
    artifact_id: str
    owner: str
    job_id: str
    key: str
    store_url: str
    attempt: int
    source: SourceSpec


def claim(artifact_id: str, owner: str) -> Claim | None:
    """Take the artifact for one attempt; None when there is nothing to do (stored, failed, held elsewhere)."""
    settings, now = get_settings(), utcnow()
    with session_scope() as session:
        row = session.exec(select(Artifact).where(Artifact.id == artifact_id).with_for_update()).first()
        if row is None or row.status != ArtifactStatus.pending.value or _held(row, now):
            return None
        job = session.exec(select(Job).where(Job.id == row.job_id)).one()
        if _canceled(job):
            _settle_failed(session, row, job, CANCELED)
            return None
        if row.attempts >= settings.artifact_max_attempts:  # earlier attempts died without settling
            _settle_failed(session, row, job, f"gave up after {row.attempts} attempts; last: {row.reason}")
            return None
        row.attempts += 1
        row.lease_owner, row.lease_until, row.updated_at = owner, now + timedelta(seconds=settings.lease_s), now
        session.add(row)
        spec = SourceSpec(render_id=row.render_id, profile=job.profile, output_url=row.source_url)
        return Claim(row.id, owner, row.job_id, row.key, row.store_url, row.attempts, spec)


def _held(row: Artifact, now) -> bool:
    """Whether another worker runs it now, or this message came well before its retry is due."""
    lease = as_utc(row.lease_until)
    if row.lease_owner is not None and lease is not None and lease > now:
        return True
    due = as_utc(row.next_attempt_at)
    return due is not None and due > now + timedelta(seconds=EARLY_SLACK_S)


def _canceled(job: Job) -> bool:
    return job.status == JobStatus.canceled.value or bool(job.cancel_requested)


def renew(claim: Claim) -> None:
    """Extend the lease; raise `LeaseLost` if another worker took the artifact, `MirrorCanceled` if the job was
    canceled meanwhile."""
    until = utcnow() + timedelta(seconds=get_settings().lease_s)
    with session_scope() as session:
        moved = session.exec(  # type: ignore[call-overload]
            update(Artifact)
            .where(Artifact.id == claim.artifact_id, Artifact.lease_owner == claim.owner)
            .values(lease_until=until)
        ).rowcount
        status, flagged = session.exec(select(Job.status, Job.cancel_requested).where(Job.id == claim.job_id)).one()
    if moved != 1:
        raise LeaseLost(claim.artifact_id)
    if status == JobStatus.canceled.value or flagged:
        raise MirrorCanceled(CANCELED)


def settle_stored(claim: Claim, copied: Copied) -> None:
    settings, now = get_settings(), utcnow()
    with session_scope() as session:
        found = _owned(session, claim)
        if found is None:
            return
        row, job = found
        row.status, row.reason = ArtifactStatus.stored.value, None
        row.sha256, row.size, row.content_type = copied.sha256, copied.size, copied.content_type
        row.stored_at = now
        days = settings.artifact_retention_days
        row.expires_at = now + timedelta(days=days) if days is not None else None
        _release(row, now)
        session.add(row)
        job_event(session, job, "job.artifact.stored")
    log.info("artifact %s stored: %d bytes, sha256 %s", claim.artifact_id, copied.size, copied.sha256)


def settle_error(claim: Claim, error: MirrorError) -> None:
    """A failed attempt: try again later while attempts remain and the failure may pass; else the artifact fails."""
    settings, now = get_settings(), utcnow()
    with session_scope() as session:
        found = _owned(session, claim)
        if found is None:
            return
        row, job = found
        if not error.retryable or row.attempts >= settings.artifact_max_attempts:
            _settle_failed(session, row, job, error.reason)
            return
        delay = backoff(row.attempts, settings)
        _release(row, now)
        row.reason = error.reason
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.lease_until = row.next_attempt_at + timedelta(seconds=settings.queue_grace_s)
        session.add(row)
        send_after_commit(session, row.id, delay)
    log.warning("artifact %s attempt %d failed, again in %.1f s: %s", row.id, row.attempts, delay, error.reason)


def backoff(attempts: int, settings: Settings) -> float:
    base = min(settings.artifact_retry_max_s, settings.artifact_retry_base_s * 2 ** max(attempts - 1, 0))
    return base * random.uniform(0.8, 1.2)


def _owned(session: Session, claim: Claim) -> tuple[Artifact, Job] | None:
    row = session.exec(select(Artifact).where(Artifact.id == claim.artifact_id).with_for_update()).first()
    if row is None or row.lease_owner != claim.owner or row.status != ArtifactStatus.pending.value:
        log.warning("artifact %s: lease lost before the attempt was recorded; dropped", claim.artifact_id)
        return None
    return row, session.exec(select(Job).where(Job.id == row.job_id)).one()


def _release(row: Artifact, now) -> None:
    row.lease_owner, row.lease_until, row.next_attempt_at, row.updated_at = None, None, None, now


def _settle_failed(session: Session, row: Artifact, job: Job, reason: str) -> None:
    row.status, row.reason = ArtifactStatus.failed.value, reason
    _release(row, utcnow())
    session.add(row)
    job_event(session, job, "job.artifact.failed")
    log.warning("artifact %s failed: %s", row.id, reason)

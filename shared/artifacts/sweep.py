"""The artifacts' share of the periodic sweep, and retention.

- A pending artifact whose message was lost (Redis flushed, a worker killed mid-copy: its lease ran out) is sent
  again; duplicates are harmless, since a mirror runs only under the artifact's lease.
- A stored artifact past its `expires_at` (`REELMILL_ARTIFACT_RETENTION_DAYS`) is deleted from its store and
  says `expired`. `prune` does the same on demand (`reelmill artifacts prune`), optionally for anything stored
  before a cutoff.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import select

from shared.artifacts.errors import MirrorError
from shared.artifacts.stores import open_store
from shared.db import session_scope
from shared.domain import dispatch
from shared.settings import get_settings
from shared.tables import Artifact, ArtifactStatus
from shared.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 500
DELETE_BATCH = 100


def sweep_artifacts() -> int:
    """Re-send lost mirrors and delete expired artifacts; returns how many rows it acted on."""
    return resend_lost() + expire_due(utcnow())


def resend_lost() -> int:
    now = utcnow()
    grace = timedelta(seconds=get_settings().queue_grace_s)
    with session_scope() as session:
        rows = session.exec(
            select(Artifact)
            .where(
                Artifact.status == ArtifactStatus.pending.value,
                or_(Artifact.lease_until.is_(None), Artifact.lease_until < now),
                or_(Artifact.next_attempt_at.is_(None), Artifact.next_attempt_at <= now),
            )
            .order_by(Artifact.next_attempt_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        ids = [row.id for row in rows]
        for row in rows:
            row.lease_owner, row.lease_until = None, now + grace
            session.add(row)
    d = dispatch.current()
    if d is not None:
        for artifact_id in ids:
            d.artifact(artifact_id, 0.0)
    if ids:
        log.info("sweeper re-sent %d artifact copies whose message was lost", len(ids))
    return len(ids)


def expire_due(cutoff: datetime, *, stored_before: datetime | None = None) -> int:
    """Delete stored artifacts whose `expires_at` is before ``cutoff`` (and, with ``stored_before``, those stored
    before it), a batch at a time. A store that fails leaves the row `stored`, for the next sweep."""
    done = 0
    while True:
        expired = _expire_batch(cutoff, stored_before)
        done += expired.deleted
        if expired.seen < DELETE_BATCH or expired.deleted == 0:
            return done


@dataclass
class _Batch:
    seen: int
    deleted: int


def _expire_batch(cutoff: datetime, stored_before: datetime | None) -> _Batch:
    due = Artifact.expires_at <= cutoff
    if stored_before is not None:
        due = or_(due, Artifact.stored_at <= stored_before)
    deleted = 0
    with session_scope() as session:
        rows = session.exec(
            select(Artifact)
            .where(Artifact.status == ArtifactStatus.stored.value, due)
            .order_by(Artifact.stored_at)
            .limit(DELETE_BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            try:
                open_store(row.store_url).delete(row.key)
            except (MirrorError, ValueError) as exc:
                log.warning("artifact %s could not be deleted yet: %s", row.id, exc)
                continue
            row.status, row.updated_at = ArtifactStatus.expired.value, utcnow()
            session.add(row)
            deleted += 1
    if deleted:
        log.info("deleted %d expired artifacts", deleted)
    return _Batch(seen=len(rows), deleted=deleted)

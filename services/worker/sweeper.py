"""The sweeper: the database is the truth, so anything due that no worker holds is sent again.

It covers a task lost from Redis (FLUSHALL, a restart without persistence), a worker killed mid-step (its lease
runs out), and an enqueue that failed after a commit. Duplicates are harmless: a task only runs if its seq is
current and the job is not leased. A job waiting in the database (`queued` for admission, `throttled` for
capacity, with no lease) is not the sweeper's: it is granted, not resent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import and_, not_, or_
from sqlmodel import select

from shared.db import session_scope
from shared.domain import dispatch
from shared.settings import get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Job, Stage
from shared.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 1000

Check = Callable[[], int]


def sweep_once(checks: Sequence[Check]) -> int:
    """Run every periodic check (each one's failure is logged and left to the next sweep)."""
    resent = 0
    for check in checks:
        try:
            resent += check()
        except Exception:
            log.exception("sweep check %s failed", getattr(check, "__name__", check))
    return resent


def resend_expired_jobs() -> int:
    now = utcnow()
    grace = timedelta(seconds=get_settings().queue_grace_s)
    waiting = and_(Job.stage.in_([Stage.queued, Stage.throttled]), Job.lease_until.is_(None))
    with session_scope() as session:
        jobs = session.exec(
            select(Job)
            .where(
                Job.status.not_in(list(TERMINAL_JOB_STATUSES)),
                Job.stage != Stage.queued,
                not_(waiting),
                or_(Job.lease_until.is_(None), Job.lease_until < now),
            )
            .order_by(Job.lease_until)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        due = [
            (j.id, j.step_seq, j.resume_stage if j.stage == Stage.throttled and j.resume_stage else j.stage)
            for j in jobs
        ]
        for job in jobs:
            job.lease_owner = job.wake_at = None
            job.lease_until = now + grace
            session.add(job)
    d = dispatch.current()
    if d is not None:
        for job_id, seq, stage in due:
            d.job(job_id, seq, stage.value)
    if due:
        log.info("sweeper re-sent %d jobs whose lease ran out", len(due))
    return len(due)

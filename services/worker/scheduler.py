"""The scheduler: the jobs that wait in the database, and when each goes on.

    parked (`wake_at`)      a retry after a delay, a 429's pause: sent to its queue when due (render polls are
                            the poller's: services/worker/polls.py)

It runs on the streams worker's event loop a few times a second; its claims take `FOR UPDATE SKIP LOCKED`, so
replicas never send the same job twice (and a duplicate message would be harmless anyway: a task only runs the
step it names). The sweeper (beat) sends whatever stays due past `queue_grace_s`, so nothing waits forever if no
streams worker runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from shared.db import session_scope
from shared.domain import dispatch
from shared.settings import get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Job, Stage
from shared.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 500


def dispatch_due(limit: int = BATCH) -> int:
    """Send every parked job whose time has come (but render polls) to its queue; how many."""
    now = utcnow()
    due = (
        select(Job.id)
        .where(
            Job.wake_at <= now,
            Job.stage != Stage.render_poll,
            Job.lease_owner.is_(None),
            Job.status.not_in(list(TERMINAL_JOB_STATUSES)),
        )
        .order_by(Job.wake_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    grace = timedelta(seconds=get_settings().queue_grace_s)
    with session_scope() as session:
        rows = session.execute(
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()))
            .values(wake_at=None, lease_until=now + grace)
            .returning(Job.id, Job.step_seq, Job.stage)
            .execution_options(synchronize_session=False)
        ).all()
    sender = dispatch.current()
    if sender is not None:
        for job_id, seq, stage in rows:
            sender.job(job_id, seq, Stage(stage).value)
    return len(rows)

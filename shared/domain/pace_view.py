"""What the database says holds NemoVideo capacity right now: the limiter (shared/pace) rebuilds its slots from
this after a Redis flush or restart, so it starts again never over the limits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import and_, or_
from sqlmodel import select

from shared.db import session_scope
from shared.settings import Settings, get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Job, Stage
from shared.timeutil import utcnow


def render_slot_ttl_s(settings: Settings) -> float:
    """How long a render slot lives without a poll renewing it: a few polls' worth, plus the grace."""
    return 3 * settings.render_poll_s + settings.queue_grace_s + settings.lease_s


def holders(credential: str) -> Mapping[str, Mapping[str, datetime]]:
    """{"streams": {job id: expiry}, "renders": {job id: expiry}} for every job streaming or rendering."""
    now = utcnow()
    render_until = now + timedelta(seconds=render_slot_ttl_s(get_settings()))
    rendering = or_(
        Job.stage == Stage.render_poll,
        and_(Job.stage == Stage.throttled, Job.resume_stage == Stage.render_poll),
    )
    with session_scope() as session:
        open_jobs = Job.status.not_in(list(TERMINAL_JOB_STATUSES))
        streaming = session.exec(
            select(Job.id, Job.lease_until).where(
                open_jobs, Job.stage == Stage.message, Job.lease_owner.is_not(None), Job.lease_until > now
            )
        ).all()
        renders = session.exec(select(Job.id).where(open_jobs, rendering)).all()
    return {
        "streams": {job_id: until for job_id, until in streaming},
        "renders": {job_id: render_until for job_id in renders},
    }

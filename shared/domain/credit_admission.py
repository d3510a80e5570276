"""Credits before spending: a job or batch that would need more upstream credits than are left is refused up
front (402, with the numbers), instead of failing one job at a time with 2001 later.

need      = (SSE turns it brings) x the per-profile estimate (`cost_estimate` setting)
available = the upstream balance (cached a few seconds) - what queued work will already spend
If the upstream balance cannot be read, work is admitted: the flow still stops cleanly on a 2001.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from sqlalchemy import func
from sqlmodel import Session, select

from shared.domain.errors import InsufficientCredits
from shared.nemo.errors import NemoError
from shared.nemo.wire import Credits
from shared.settings import get_settings
from shared.tables import Job, JobStatus, JobTurn, MessageState

log = logging.getLogger(__name__)
BALANCE_TTL_S = 5.0
_lock = threading.Lock()
_cached: tuple[float, Credits] | None = None


def balance() -> Credits | None:
    global _cached
    with _lock:
        if _cached and time.monotonic() - _cached[0] < BALANCE_TTL_S:
            return _cached[1]
    from shared.nemo.upstream import get_client

    try:
        fresh = get_client().get_credits()
    except NemoError as exc:
        log.warning("credit admission skipped: the balance could not be read (%s)", exc)
        return None
    with _lock:
        _cached = (time.monotonic(), fresh)
    return fresh


def forget_balance() -> None:
    global _cached
    with _lock:
        _cached = None


def cost(needs: Mapping[str, int]) -> int:
    """``needs``: SSE turns per profile."""
    estimate = get_settings().cost_estimate
    return sum(count * estimate.get(profile, 0) for profile, count in needs.items())


def committed(session: Session) -> int:
    """What work already accepted will spend: SSE turns not sent yet, of jobs that have not ended."""
    terminal = [s.value for s in (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled)]
    rows = session.exec(
        select(Job.profile, func.count())
        .join(JobTurn, JobTurn.job_id == Job.id)
        .where(
            Job.status.not_in(terminal),
            JobTurn.intent == "sse",
            JobTurn.message_state == MessageState.pending.value,
        )
        .group_by(Job.profile)
    ).all()
    return cost(dict(rows))


def admit(session: Session, needs: Mapping[str, int], *, what: str = "this job") -> None:
    """Raise InsufficientCredits (402) when ``needs`` cannot be paid for."""
    settings = get_settings()
    needed = cost(needs)
    if not settings.credit_admission or needed == 0:
        return
    current = balance()
    if current is None:
        return
    reserved = committed(session)
    free = current.available - reserved
    if needed > free:
        raise InsufficientCredits(
            f"{what} needs about {needed} credits, but only {max(free, 0)} are free "
            f"({current.available} available upstream, {reserved} reserved by queued work)",
            details={
                "needed": needed,
                "available": current.available,
                "frozen": current.frozen,
                "total": current.total,
                "reserved": reserved,
                "free": free,
            },
        )

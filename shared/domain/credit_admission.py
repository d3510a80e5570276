"""Credits before spending: a job or batch that would need more upstream credits than are left is refused up
front (402, with the numbers), instead of failing one job at a time with 2001 later.

need      = (SSE turns it brings) x the per-profile estimate (`cost_estimate` setting)
available = the upstream balance (cached a few seconds) - what queued work will already spend
If the upstream balance cannot be read, work is admitted: the flow still stops cleanly on a 2001.
The balance is read (`prefetch`) before the transaction that admits the work opens, never inside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from sqlalchemy import func, or_
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


def committed(session: Session, *, tenant_id: str | None = None, exclude_batch: str | None = None) -> int:
    """What work already accepted will spend: SSE turns not sent yet, of jobs that have not ended. ``tenant_id``
    narrows it to one tenant's work; ``exclude_batch`` leaves out a batch being written in this transaction."""
    terminal = [s.value for s in (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled)]
    stmt = (
        select(Job.profile, func.count())
        .join(JobTurn, JobTurn.job_id == Job.id)
        .where(
            Job.status.not_in(terminal),
            JobTurn.intent == "sse",
            JobTurn.message_state == MessageState.pending.value,
        )
    )
    if tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == tenant_id)
    if exclude_batch is not None:
        stmt = stmt.where(or_(Job.batch_id.is_(None), Job.batch_id != exclude_batch))
    return cost(dict(session.exec(stmt.group_by(Job.profile)).all()))


def prefetch() -> Credits | None:
    """The balance `admit` will compare with: read it BEFORE opening the transaction that admits work. (Reading
    it may mint the upstream credential, which writes in a session of its own: inside an open write transaction on
    SQLite that would wait for the transaction's own lock.) None when admission is off or the balance is unknown."""
    return balance() if get_settings().credit_admission else None


def admit(
    session: Session,
    needs: Mapping[str, int],
    current: Credits | None,
    *,
    what: str = "this job",
    exclude_batch: str | None = None,
) -> None:
    """Raise InsufficientCredits (402) when ``needs`` cannot be paid for from ``current`` (see `prefetch`).

    Every kind of work is admitted, even one that costs nothing (a follow-up that only asks for the status): it
    is refused while accepted work already needs more than the balance holds. The upstream balance is shared by
    every tenant, so the 402 shows its figures only with `credits_show_balance`."""
    settings = get_settings()
    if not settings.credit_admission or current is None:
        return
    needed = cost(needs)
    reserved = committed(session, exclude_batch=exclude_batch)
    free = current.available - reserved
    if needed <= free and (needed > 0 or free >= 0):
        return
    if not settings.credits_show_balance:
        raise InsufficientCredits(
            f"{what} needs about {needed} credits, more than the upstream balance has free now; "
            "try again when running work has finished or credits were added",
            details={"needed": needed},
        )
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

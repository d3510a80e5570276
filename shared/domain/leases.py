"""Leases held by workers that are gone: free them now instead of waiting for them to run out.

A lease owner is ``<hostname>:<pid>:<hex>`` (services/worker/lease.py). A launcher that knows which of its workers
died (`reelmill up` records the ones it starts) releases their jobs at once, so their steps are sent again at start
rather than after the lease and the queue grace run out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, select

from shared.tables import TERMINAL_JOB_STATUSES, Job
from shared.timeutil import utcnow


@dataclass(frozen=True)
class Released:
    """A job whose lease was freed, and the step to send again."""

    job_id: str
    seq: int
    stage: str


def owner_host_pid(owner: str) -> tuple[str, int] | None:
    """``(hostname, pid)`` of a lease owner, or None when it is not in the ``host:pid:hex`` form."""
    host, _, rest = owner.rpartition(":")[0].rpartition(":")
    try:
        return (host, int(rest)) if host else None
    except ValueError:
        return None


def owners_of(hostname: str, pids: Iterable[int]) -> Callable[[str], bool]:
    """A predicate that holds for the owners run by one of ``pids`` on ``hostname``."""
    wanted = {(hostname, pid) for pid in pids}
    return lambda owner: owner_host_pid(owner) in wanted


def release_dead_leases(session: Session, is_dead: Callable[[str], bool]) -> list[Released]:
    """Free the lease of every unfinished job whose owner ``is_dead``, in the caller's transaction. The jobs become
    due now (the sweeper's next run sends them, or the caller does with the returned steps)."""
    terminal = [s.value for s in TERMINAL_JOB_STATUSES]
    owners = session.exec(
        select(Job.lease_owner).where(Job.lease_owner.is_not(None), Job.status.not_in(terminal)).distinct()
    ).all()
    dead = [owner for owner in owners if owner and is_dead(owner)]
    if not dead:
        return []
    rows = session.execute(
        update(Job)
        .where(Job.lease_owner.in_(dead), Job.status.not_in(terminal))
        .values(lease_owner=None, lease_until=utcnow())
        .returning(Job.id, Job.step_seq, Job.stage)
    ).all()
    return [Released(job_id, seq, getattr(stage, "value", stage)) for job_id, seq, stage in rows]

"""Leases: which worker process runs a job's current step, and until when.

A task carries the job's `step_seq`; claiming succeeds only for the current seq, on a job that is not leased (or
whose lease ran out), so a duplicate or stale message does nothing. The owner is the worker process
(`<host>:<pid>:<boot id>`): while steps run, one renewer per process extends every lease it holds in one
statement, and learns in one more which of those jobs their clients asked to cancel.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cache

from sqlalchemy import bindparam, or_, update
from sqlmodel import Session

from shared.db import session_scope
from shared.settings import get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Job
from shared.timeutil import utcnow

log = logging.getLogger(__name__)
_TERMINAL = list(TERMINAL_JOB_STATUSES)
RENEW_AT_MOST_EVERY_S = 2.0  # also how soon a cancel reaches a running step


@cache
def _owner_for(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"


def process_owner() -> str:
    """This process's lease owner (a forked child gets its own)."""
    return _owner_for(os.getpid())


def claim(session: Session, job_id: str, seq: int, owner: str) -> Job | None:
    """Take the lease for step ``seq`` of the job, in the caller's transaction; the claimed row, or None when the
    task is stale (another seq), the job ended, or another worker holds a live lease."""
    now = utcnow()
    until = now + timedelta(seconds=get_settings().lease_s)
    params = {"w_id": job_id, "w_seq": seq, "w_now": now, "v_owner": owner, "v_until": until}
    return session.execute(_CLAIM, params).scalars().first()


_until = Job.__table__.c.lease_until.type  # type: ignore[attr-defined]
# built once: only the values change from one claim to the next (services/worker/statements.py says why)
_CLAIM = (
    update(Job)
    .where(
        Job.id == bindparam("w_id"),
        Job.step_seq == bindparam("w_seq"),
        Job.status.not_in(_TERMINAL),
        or_(Job.lease_owner.is_(None), Job.lease_until < bindparam("w_now", type_=_until)),
    )
    .values(lease_owner=bindparam("v_owner"), lease_until=bindparam("v_until", type_=_until))
    .returning(Job)
)


def release(job_id: str, owner: str) -> None:
    try:
        with session_scope() as session:
            session.exec(  # type: ignore[call-overload]
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner)
                .values(lease_owner=None, lease_until=utcnow())
            )
    except Exception as exc:  # the lease runs out by itself
        log.warning("could not release the lease of %s: %s", job_id, type(exc).__name__)


class Renewer:
    """Extends the leases this process holds; learns which of those jobs were asked to cancel."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._canceled: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._held.add(job_id)
            self._canceled.discard(job_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="lease-renewer", daemon=True)
                self._thread.start()

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)
            self._canceled.discard(job_id)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._canceled

    def _loop(self) -> None:
        while True:
            self._wake.wait(max(0.2, min(get_settings().lease_s / 3, RENEW_AT_MOST_EVERY_S)))
            try:
                self.renew_now()
            except Exception:
                log.exception("lease renewal failed; retrying")

    def renew_now(self) -> None:
        held = self.held()
        if not held:
            return
        canceled = renew(held, process_owner())
        with self._lock:
            self._canceled |= canceled & self._held


def renew(job_ids: list[str], owner: str) -> set[str]:
    """Extend ``owner``'s leases on ``job_ids`` in one statement; the ids among them whose client asked to cancel."""
    until = utcnow() + timedelta(seconds=get_settings().lease_s)
    with session_scope() as session:
        rows = session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.lease_owner == owner)
            .values(lease_until=until)
            .returning(Job.id, Job.cancel_requested)
        ).all()
    return {job_id for job_id, cancel in rows if cancel}


renewer = Renewer()


@contextmanager
def held(job_id: str) -> Iterator[None]:
    renewer.hold(job_id)
    try:
        yield
    finally:
        renewer.release(job_id)

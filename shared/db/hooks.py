"""Run work after a transaction commits (enqueue a task only once the row it names is visible)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

log = logging.getLogger(__name__)
_KEY = "reelmill_after_commit"


def after_commit(session: OrmSession, fn: Callable[[], None]) -> None:
    """Call ``fn`` once ``session`` commits; dropped if it rolls back. Failures are logged, never raised:
    whatever ``fn`` was meant to start, the sweeper starts it later from the committed rows."""
    session.info.setdefault(_KEY, []).append(fn)


@event.listens_for(OrmSession, "after_commit")
def _run_after_commit(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT was released: the outer transaction is still open
        return
    callbacks = session.info.pop(_KEY, [])
    for fn in callbacks:
        try:
            fn()
        except Exception:
            log.exception("after-commit callback failed; the sweeper will retry it")


@event.listens_for(OrmSession, "after_rollback")
def _drop_on_rollback(session: OrmSession) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_KEY, None)

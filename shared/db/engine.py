"""One engine per process, built on first use (never at import), rebuilt after a fork.

SQLite (the laptop default) gets WAL and a busy timeout so the API, the workers and the sweeper can share the
file; PostgreSQL (production) gets a pool sized for a threaded worker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from shared.db.stats import count_statements
from shared.settings import get_settings

_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid: int | None = None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    size = pool_size or int(os.environ.get("REELMILL_DB_POOL_SIZE", "10"))
    return create_engine(
        url, pool_size=size, max_overflow=size * 2, pool_pre_ping=True, pool_recycle=1800, pool_timeout=60
    )


def get_engine() -> Engine:
    global _engine, _engine_pid
    pid = os.getpid()
    if _engine is None or _engine_pid != pid:
        with _lock:
            if _engine is None or _engine_pid != pid:
                _engine = make_engine(get_settings().effective_database_url)
                count_statements(_engine)
                _engine_pid = pid
    return _engine


def reset_engine() -> None:
    """Drop the process's engine (tests switch databases; `reelmill up` children start clean)."""
    global _engine, _engine_pid
    with _lock:
        if _engine is not None and _engine_pid == os.getpid():
            _engine.dispose()
        _engine = None
        _engine_pid = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

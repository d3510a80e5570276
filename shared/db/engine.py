"""One engine per process, built on first use (never at import), rebuilt after a fork; sessions for writing and for
reading.

SQLite (the laptop default) is shared by the API, the workers and the sweeper, each a process of its own. Two rules
keep it from answering "database is locked":
- a transaction that may write starts with `BEGIN IMMEDIATE`: it takes the file's write lock up front, and when
  another process holds it, it waits (`busy_timeout`) instead of failing. (A plain `BEGIN` reads first and fails
  at its first write when another process committed meanwhile: SQLite cannot upgrade a stale read to a write, and
  it does not wait in that case.)
- a transaction that only reads (`read_session()`, or a connection with the `READ_ONLY` execution option) starts
  with a plain `BEGIN`: in WAL mode it never blocks and is never blocked.
pysqlite's own transaction handling is turned off so that these BEGINs (and SAVEPOINTs) are the ones sent.

PostgreSQL (production) gets a pool of `db_pool_size` connections per process (plus twice as many overflow);
both rules above are SQLite's only. A pooled connection idle for more than a few seconds is pinged before use (a
database restarted meanwhile costs a reconnect, not an error); one in steady use is not (a ping on every checkout
is a round trip per transaction).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from shared.db.stats import count_statements
from shared.settings import get_settings

READ_ONLY = "reelmill_read_only"  # execution option: this connection's transactions only read
BUSY_TIMEOUT_MS = 30_000
POOL_TIMEOUT_S = 60

_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid: int | None = None


def _sqlite_connect(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # no implicit BEGIN from pysqlite: `_sqlite_begin` sends ours
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    size = pool_size or get_settings().db_pool_size
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            pool_size=size,
            max_overflow=size * 2,
            pool_timeout=POOL_TIMEOUT_S,
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(
        url,
        pool_size=size,
        max_overflow=size * 2,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT_S,
    )
    event.listen(engine, "connect", _note_checkin)  # a new connection is fresh
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


PING_AFTER_IDLE_S = 5.0


def _note_checkin(_dbapi_conn, record) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
    """Before handing out a connection that sat idle a while, check it still works; a dead one is replaced."""
    if time.monotonic() - record.info.get("checked_in", 0.0) < PING_AFTER_IDLE_S:
        return
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT 1")
        dbapi_conn.rollback()
    except Exception as exc:
        raise DisconnectionError(f"pooled connection is gone ({type(exc).__name__})") from exc


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


def reader_engine() -> Engine:
    """The process's engine, for transactions that only read (same pool)."""
    return get_engine().execution_options(**{READ_ONLY: True})


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


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for reading only: on SQLite it neither waits for nor blocks writers. Never commit in it."""
    with Session(reader_engine(), expire_on_commit=False) as session:
        yield session

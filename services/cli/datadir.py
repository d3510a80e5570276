"""What `reelmill up` keeps in its data directory, and where other commands find it.

```
<data_dir>/              0700
  reelmill.db            the SQLite database (laptop default), 0600 like every file here
  dev-api-key            the dev tenant's key, reused while it authenticates
  flower-password        Flower's password, the same across restarts
  redis/                 the embedded broker: valkey.conf (with its password), password, appendonlydir/
  logs/<role>.log        each child's output
  sim-state.json         the simulator's state (--sim)
  workers.json           the workers this data dir's last `up` started (their leases are freed on the next start)
  up.lock                held by the running `up`: one per data dir
```
The running `up` also records its data dir in ``$XDG_STATE_HOME/reelmill/running.json`` (default
``~/.local/state``) so that `reelmill keys`, run from any directory, finds the same database.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from shared.private_files import kept_secret, make_private_dir, read_private, tighten, write_private

DEV_KEY_FILE = "dev-api-key"
FLOWER_PASSWORD_FILE = "flower-password"
REDIS_DIR = "redis"
REDIS_PASSWORD_FILE = "password"
SIM_STATE_FILE = "sim-state.json"
WORKERS_FILE = "workers.json"
LOCK_FILE = "up.lock"
LOG_DIR = "logs"


class DataDirBusy(Exception):
    """Another `reelmill up` runs on this data directory."""


def prepare(data_dir: Path) -> Path:
    """Create the data dir 0700 (and logs/), and tighten what an older version left readable to others."""
    data_dir = make_private_dir(data_dir.resolve())
    make_private_dir(data_dir / LOG_DIR)
    kept = [p for p in data_dir.iterdir() if p.name.startswith("reelmill.db")]
    tighten([*kept, *(data_dir / LOG_DIR).iterdir(), data_dir / DEV_KEY_FILE, data_dir / FLOWER_PASSWORD_FILE])
    return data_dir


def flower_password(data_dir: Path) -> str:
    return kept_secret(data_dir / FLOWER_PASSWORD_FILE, lambda: secrets.token_urlsafe(18))


def redis_password(data_dir: Path) -> str:
    make_private_dir(data_dir / REDIS_DIR)
    return kept_secret(data_dir / REDIS_DIR / REDIS_PASSWORD_FILE, lambda: secrets.token_hex(24))


def hold_lock(data_dir: Path) -> IO[str]:
    """Take the data dir's lock for as long as the returned file stays open; DataDirBusy when it is taken."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = handle.read().strip() or "?"
        handle.close()
        raise DataDirBusy(f"another `reelmill up` (pid {holder}) is running on {data_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


# --- the workers an `up` started -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRecord:
    host: str
    pid: int
    started: float  # the process's create time: a reused pid is not the same worker

    def alive(self) -> bool:
        try:
            return psutil.Process(self.pid).create_time() == self.started
        except psutil.Error:
            return False


def record_workers(data_dir: Path, pids: list[int]) -> None:
    host = socket.gethostname()
    records = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            records.append({"host": host, "pid": pid, "started": psutil.Process(pid).create_time()})
    write_private(data_dir / WORKERS_FILE, json.dumps(records))


def recorded_workers(data_dir: Path) -> list[WorkerRecord]:
    try:
        return [WorkerRecord(**r) for r in json.loads(read_private(data_dir / WORKERS_FILE) or "[]")]
    except (ValueError, TypeError):
        return []


# --- where other commands find the running `up` --------------------------------------------------------------


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reelmill"


def record_running(data_dir: Path, api_url: str, external_database: bool) -> None:
    make_private_dir(state_dir())
    doc = {"pid": os.getpid(), "data_dir": str(data_dir), "api_url": api_url, "external_database": external_database}
    write_private(state_dir() / "running.json", json.dumps(doc))


def forget_running() -> None:
    path = state_dir() / "running.json"
    with contextlib.suppress(OSError, ValueError):
        if json.loads(read_private(path) or "{}").get("pid") == os.getpid():
            path.unlink()


@dataclass(frozen=True)
class RunningUp:
    data_dir: Path
    external_database: bool  # it uses REELMILL_DATABASE_URL, not the data dir's SQLite file


def running_up() -> RunningUp | None:
    """The `reelmill up` running on this machine for this user, if any."""
    try:
        doc = json.loads(read_private(state_dir() / "running.json") or "{}")
    except (OSError, ValueError):
        return None
    data_dir = Path(doc.get("data_dir") or "/nonexistent")
    return RunningUp(data_dir, bool(doc.get("external_database"))) if is_running(data_dir) else None


def is_running(data_dir: Path) -> bool:
    """Whether an `up` holds this data dir's lock now."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False

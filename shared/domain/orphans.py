"""The sweeper's check for uploaded files no live job needs (issue 11, item 5).

Every path that ends a job frees its files (shared/domain/job_end.py); this catches what slipped through: a
request that died between writing a file and its job, a job ended while its cleanup failed. A file is removed once
it is older than `REELMILL_UPLOADS_MAX_AGE_S` and no job still open (queued, starting, processing) names it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlmodel import select

from shared.db import session_scope
from shared.settings import get_settings
from shared.tables import TERMINAL_JOB_STATUSES, Job
from shared.uploads import remove_upload

log = logging.getLogger(__name__)
_last_run = 0.0
EVERY_S = 600.0  # the uploads directory is listed at most this often, whatever the sweep interval


def sweep_orphan_uploads(now: float | None = None) -> int:
    """Remove old uploads that belong to no open job; how many. Runs at most every EVERY_S seconds."""
    global _last_run
    now = time.time() if now is None else now
    if now - _last_run < EVERY_S:
        return 0
    _last_run = now
    settings = get_settings()
    root = settings.effective_uploads_dir
    if not root.is_dir():
        return 0
    cutoff = now - settings.uploads_max_age_s
    old = [p for p in _files(root) if _mtime(p) < cutoff]
    if not old:
        return 0
    live = _live_paths()
    removed = 0
    for path in old:
        if str(path) not in live and str(path.resolve()) not in live:
            remove_upload(path)
            removed += 1
    if removed:
        log.info("removed %d uploaded files that no open job needs", removed)
    return removed


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def _live_paths() -> set[str]:
    with session_scope() as session:
        rows = session.exec(
            select(Job.files).where(Job.status.not_in(list(TERMINAL_JOB_STATUSES)), Job.files != [])
        ).all()
    return {f["path"] for files in rows for f in files or []}

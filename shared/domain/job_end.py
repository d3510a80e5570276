"""What follows a job's end, after commit, whichever path ended it (the worker's flow, a cancel, a deadline):
its upstream render is canceled when one was running, the NemoVideo capacity it held (stream and render slots)
is given back, its uploaded files are freed, its batch is settled (`batch.completed` written once every job has
ended). A step that fails here is logged and left to
the sweeper, which settles batches and removes orphaned files from the rows."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import Session

from shared.db.hooks import after_commit
from shared.tables import Job
from shared.uploads import remove_upload

log = logging.getLogger(__name__)


def after_job_end(session: Session, job: Job, *, cancel_render: str | None = None) -> None:
    job_id, batch_id, profile = job.id, job.batch_id, job.profile
    files = [f["path"] for f in job.files or []]

    def done() -> None:
        from shared.nemo.upstream import cancel_render_quietly, get_pace

        if cancel_render:
            cancel_render_quietly(profile, cancel_render)
        for resource in ("streams", "renders"):  # the limiter never raises: Redis away, the slots run out
            get_pace().release(resource, job_id)
        free_files(files)
        if batch_id is not None:
            from shared.domain import batches

            batches.settle(batch_id)

    after_commit(session, done)
    log.debug("job %s ended", job_id)


def free_files(paths: list[str]) -> None:
    for path in paths:
        try:
            remove_upload(Path(path))  # the file and the folder of its own it was kept in
        except OSError as exc:  # the orphan sweep tries again
            log.warning("could not remove an uploaded file: %s", type(exc).__name__)


def pause_batch_after_commit(session: Session, batch_id: str, reason: str) -> None:
    from shared.domain import batches

    after_commit(session, lambda: batches.pause_for_credits(batch_id, reason))

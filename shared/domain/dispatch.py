"""The seam between the domain and the task queue.

Domain code says "this job's next step is ready", "this delivery is due" or "this artifact needs copying"; the
installed dispatcher (Celery, see shared/taskq/celery.py) turns that into a message. Calls happen after commit.
With no dispatcher installed, nothing is lost: the sweeper finds due work from the rows.
"""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    def job(self, job_id: str, seq: int, stage: str, countdown: float = 0.0) -> None: ...

    def delivery(self, delivery_id: str, countdown: float = 0.0) -> None: ...

    def artifact(self, artifact_id: str, countdown: float = 0.0) -> None:
        """Copy a render's output into the artifact store (shared/artifacts/)."""


_dispatcher: Dispatcher | None = None


def install(dispatcher: Dispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def current() -> Dispatcher | None:
    return _dispatcher

"""The Celery dispatcher: turns "this job's next step is due" into a message on the right queue."""

from __future__ import annotations

from services.worker.app import celery_app
from services.worker.queues import STEPS, STREAM_STAGES, STREAMS, WEBHOOKS
from shared.domain import dispatch


class CeleryDispatcher:
    def job(self, job_id: str, seq: int, stage: str, countdown: float = 0.0) -> None:
        if stage in STREAM_STAGES:
            name, queue = "reelmill.stream", STREAMS
        else:
            name, queue = "reelmill.advance", STEPS
        celery_app.send_task(name, args=[job_id, seq], queue=queue, countdown=countdown or None)

    def delivery(self, delivery_id: str, countdown: float = 0.0) -> None:
        celery_app.send_task("reelmill.deliver", args=[delivery_id], queue=WEBHOOKS, countdown=countdown or None)


def install_celery_dispatcher() -> None:
    dispatch.install(CeleryDispatcher())

"""The Celery application, configured once for producers and workers alike.

Reliability settings, and why:
- acks_late + reject_on_worker_lost: a task whose worker died is redelivered, not lost;
- visibility_timeout longer than the longest step (a 15-minute stream, a poll countdown), so Redis does not hand a
  running task to a second worker;
- prefetch 1 per thread: a busy worker does not hoard messages an idle one could run;
- the sweeper (beat) re-enqueues any job whose lease ran out, which covers what Redis itself can lose.

Producers (the API) call ``producer()``; the worker builds its own app with ``create_celery(settings, include=...)``.
``CeleryDispatcher`` is the domain's dispatch seam (shared/domain/dispatch.py) on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from celery import Celery
from kombu import Exchange, Queue

from shared.domain import dispatch
from shared.redis_conn import DEFAULT_REDIS_URL
from shared.settings import Settings, get_settings
from shared.taskq.queues import (
    ALL_QUEUES,
    STEPS,
    STREAM_STAGES,
    TASK_ADVANCE,
    TASK_DELIVER,
    TASK_MIRROR,
    TASK_ROUTES,
    TASK_STREAM,
    TASK_SWEEP,
)


def broker_url(settings: Settings) -> str:
    return settings.effective_redis_url or DEFAULT_REDIS_URL


def create_celery(settings: Settings, include: Sequence[str] = ()) -> Celery:
    app = Celery("reelmill", broker=broker_url(settings), include=list(include))
    visibility = max(7200.0, settings.sse_max_s * 2 + settings.render_poll_s * 4)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_send_task_events=settings.task_events,
        task_send_sent_event=False,  # a "sent" event per publish doubles Redis traffic; Flower needs none
        task_default_queue=STEPS,
        # one direct exchange per queue: a message lands in exactly one list
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ALL_QUEUES],
        task_routes={name: {"queue": queue} for name, queue in TASK_ROUTES.items()},
        broker_transport_options={"visibility_timeout": visibility},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={"sweep": {"task": TASK_SWEEP, "schedule": settings.sweep_interval_s}},
    )
    return app


@lru_cache(maxsize=1)
def producer() -> Celery:
    """The process's app for sending tasks by name (built on first use, never at import)."""
    return create_celery(get_settings())


class CeleryDispatcher:
    """Turns "this job's next step is due" into a message on the right queue."""

    def __init__(self, app: Celery | None = None) -> None:
        self._app = app

    @property
    def app(self) -> Celery:
        return self._app or producer()

    def job(self, job_id: str, seq: int, stage: str, countdown: float = 0.0) -> None:
        name = TASK_STREAM if stage in STREAM_STAGES else TASK_ADVANCE
        self.app.send_task(name, args=[job_id, seq], queue=TASK_ROUTES[name], countdown=countdown or None)

    def delivery(self, delivery_id: str, countdown: float = 0.0) -> None:
        self.app.send_task(
            TASK_DELIVER, args=[delivery_id], queue=TASK_ROUTES[TASK_DELIVER], countdown=countdown or None
        )

    def artifact(self, artifact_id: str, countdown: float = 0.0) -> None:
        self.app.send_task(TASK_MIRROR, args=[artifact_id], queue=TASK_ROUTES[TASK_MIRROR], countdown=countdown or None)


def install_celery_dispatcher(app: Celery | None = None) -> None:
    dispatch.install(CeleryDispatcher(app))

"""The Celery application (`celery -A services.worker.app`). Tasks are thin drivers around services/worker/flow.py.

Reliability settings, and why:
- acks_late + reject_on_worker_lost: a task whose worker died is redelivered, not lost;
- visibility_timeout longer than the longest step (a 15-minute stream, a poll countdown), so Redis does not hand a
  running task to a second worker;
- prefetch 1 per thread: a busy worker does not hoard messages an idle one could run;
- the sweeper (beat) re-enqueues any job whose lease ran out, which covers what Redis itself can lose.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from services.worker.queues import ALL_QUEUES, STEPS, STREAMS, WEBHOOKS
from shared.redis_conn import DEFAULT_REDIS_URL
from shared.settings import Settings, get_settings


def broker_url(settings: Settings) -> str:
    return settings.redis_url or DEFAULT_REDIS_URL


def create_celery(settings: Settings) -> Celery:
    app = Celery("reelmill", broker=broker_url(settings), include=["services.worker.tasks"])
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
        task_routes={
            "reelmill.advance": {"queue": STEPS},
            "reelmill.stream": {"queue": STREAMS},
            "reelmill.deliver": {"queue": WEBHOOKS},
            "reelmill.sweep": {"queue": STEPS},
        },
        broker_transport_options={"visibility_timeout": visibility},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep": {"task": "reelmill.sweep", "schedule": settings.sweep_interval_s},
        },
    )
    return app


celery_app = create_celery(get_settings())
app = celery_app

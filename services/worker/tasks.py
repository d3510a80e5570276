"""Celery tasks: thin drivers, each taking ids only. This module is also where the worker assembles what it uses:
the dispatcher (shared/taskq/celery.py) and the sweeper's checks."""

from __future__ import annotations

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy.exc import OperationalError

from services.worker import eventloop
from services.worker.app import celery_app
from services.worker.delivery import deliver as deliver_webhook
from services.worker.delivery import resend_lost_deliveries
from services.worker.lease import process_owner
from services.worker.mirror import mirror_artifact
from services.worker.runner import claim, run_chain, run_step
from services.worker.sweeper import resend_expired_jobs, sweep_once
from shared.artifacts.sweep import sweep_artifacts
from shared.domain import batches
from shared.domain.orphans import sweep_orphan_uploads
from shared.tables import Stage
from shared.taskq.celery import install_celery_dispatcher
from shared.taskq.queues import STREAMS, TASK_ADVANCE, TASK_DELIVER, TASK_MIRROR, TASK_STREAM, TASK_SWEEP

install_celery_dispatcher(celery_app)

# What the periodic sweep checks, in order: jobs whose lease ran out, deliveries due but not attempted, batches
# whose job-end step was lost, artifacts whose copy was lost or whose retention ran out, uploads no open job needs.
SWEEPS = (resend_expired_jobs, resend_lost_deliveries, batches.sweep_batches, sweep_artifacts, sweep_orphan_uploads)

# A database that refuses a connection (restarting, out of connection slots) must not cost the message: the task
# is sent again with backoff (and if every retry fails, the sweeper finds the job from its row later).
DB_RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 20,
}


@celery_app.task(name=TASK_ADVANCE, ignore_result=True, **DB_RETRY)
def advance(job_id: str, seq: int) -> None:
    """Run the job's current short step (steps queue)."""
    run_step(job_id, seq)


@celery_app.task(name=TASK_STREAM, ignore_result=True, **DB_RETRY)
def stream(job_id: str, seq: int) -> None:
    """Claim the job and hand its SSE message to this process's event loop (streams queue); return at once."""
    step = claim(job_id, seq, process_owner())
    if step is None:
        return
    if step.ctx.job.stage != Stage.message:  # e.g. resumed from `throttled` into another stage: run it here
        run_chain(step)
        return
    eventloop.host().submit_stream(step)


@worker_ready.connect
def _start_event_loop(sender: object, **_: object) -> None:
    """A worker that serves the streams queue runs the event loop from the start (render polls, the scheduler)."""
    queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    if STREAMS in (getattr(queues, "consume_from", None) or {}):
        eventloop.host()


@worker_shutdown.connect
def _stop_event_loop(**_: object) -> None:
    eventloop.stop_host()


@celery_app.task(name=TASK_DELIVER, ignore_result=True, **DB_RETRY)
def deliver(delivery_id: str) -> None:
    """Make one webhook delivery attempt when it is due (webhooks queue)."""
    deliver_webhook(delivery_id)


@celery_app.task(name=TASK_MIRROR, ignore_result=True, **DB_RETRY)
def mirror(artifact_id: str) -> None:
    """Copy one render output into the artifact store (artifacts queue)."""
    mirror_artifact(artifact_id)


@celery_app.task(name=TASK_SWEEP, ignore_result=True)
def sweep() -> None:
    """Re-enqueue whatever the rows say is due but nobody is running (periodic, from beat)."""
    sweep_once(SWEEPS)

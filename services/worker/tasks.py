"""Celery tasks: thin drivers, each taking ids only."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from services.worker.app import celery_app
from services.worker.delivery import deliver as deliver_webhook
from services.worker.mirror import mirror_artifact
from services.worker.runner import run_step
from services.worker.sweeper import extra_sweeps, sweep_once
from shared.artifacts.sweep import sweep_artifacts
from shared.domain import batches  # registers the batch job-end hook (admission, completion)
from shared.taskq.celery import install_celery_dispatcher
from shared.taskq.queues import TASK_ADVANCE, TASK_DELIVER, TASK_MIRROR, TASK_STREAM, TASK_SWEEP

install_celery_dispatcher(celery_app)
extra_sweeps.append(batches.sweep_batches)  # a lost job-end hook never stalls a batch
extra_sweeps.append(sweep_artifacts)  # lost mirror messages re-sent, expired artifacts deleted


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
    """Run the job's SSE message step (streams queue)."""
    run_step(job_id, seq)


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
    sweep_once()

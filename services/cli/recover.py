"""What `reelmill up` does at start, before its workers start, so that a stop (Ctrl-C, a crash, a kill) loses no
time as well as no work:

1. the leases of jobs held by workers its previous run started, which are gone, are freed and their steps sent
   again at once (instead of after the lease and `queue_grace_s` run out);
2. with the embedded broker (ours alone, nothing consumes it yet), every message a killed worker had taken but
   not acknowledged goes back to its queue at once (instead of after the 2-hour visibility timeout). A warm
   shutdown already hands them back; this covers a worker killed before it could.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from pydantic import SecretStr

from services.cli.datadir import recorded_workers
from shared.db import session_scope
from shared.domain.leases import Released, owners_of, release_dead_leases
from shared.settings import Settings
from shared.taskq.celery import CeleryDispatcher, create_celery

log = logging.getLogger(__name__)


def dead_worker_pids(data_dir: Path) -> list[int]:
    """The workers the previous `up` on this data dir started that no longer run."""
    host = socket.gethostname()
    return [w.pid for w in recorded_workers(data_dir) if w.host == host and not w.alive()]


def release_dead(data_dir: Path) -> list[Released]:
    pids = dead_worker_pids(data_dir)
    if not pids:
        return []
    with session_scope() as session:
        return release_dead_leases(session, owners_of(socket.gethostname(), pids))


def resend_held_by(settings: Settings, pid: int) -> int:
    """A worker `up` started died and was started again: free the leases its process held and send their steps
    now, not after the lease and `queue_grace_s` run out (the sweeper's way). Its unacknowledged messages stay
    until the broker's visibility timeout (other workers run, so they cannot be told apart); the steps resent
    here make them redundant, and a step that arrives twice finds its checkpoint. How many jobs were resent."""
    with session_scope() as session:
        released = release_dead_leases(session, owners_of(socket.gethostname(), [pid]))
    dispatcher = CeleryDispatcher(create_celery(settings))
    for job in released:
        dispatcher.job(job.job_id, job.seq, job.stage)
    return len(released)


def restore_unacked(app_settings: Settings) -> int:
    """Put every taken-but-unacknowledged message back on its queue; how many. Only safe while no worker runs."""
    app = create_celery(app_settings)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        tags = channel.client.hkeys(channel.unacked_key)
        for tag in tags:
            channel.qos.restore_by_tag(tag)
    return len(tags)


def broker_settings(settings: Settings, redis_url: str, redis_password: str | None) -> Settings:
    update: dict[str, object] = {"redis_url": redis_url}
    if redis_password is not None:
        update["redis_password"] = SecretStr(redis_password)
    return settings.model_copy(update=update)


def recover(settings: Settings, data_dir: Path, embedded: bool) -> tuple[int, int]:
    """Free dead workers' leases and send their steps; restore unacked messages of the embedded broker.
    ``settings`` points at the broker the children will use. Returns (jobs re-sent, messages restored)."""
    restored = restore_unacked(settings) if embedded else 0
    released = release_dead(data_dir)
    if released:
        dispatcher = CeleryDispatcher(create_celery(settings))
        for job in released:
            dispatcher.job(job.job_id, job.seq, job.stage)
    return len(released), restored

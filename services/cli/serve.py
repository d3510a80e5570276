"""Process roles: `reelmill api | worker | beat | flower | migrate`. The Docker image's command picks one."""

from __future__ import annotations

import logging
import os
import warnings

import typer

from shared.settings import get_settings


def api(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Uvicorn worker processes."),
) -> None:
    """Serve the REST intake API."""
    import uvicorn

    from shared.logs import configure_logging, uvicorn_log_config

    configure_logging("api")
    uvicorn.run(
        "services.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=30,
    )


def worker(
    queues: str = typer.Option("steps,webhooks", help="Comma-separated queues: steps, streams, webhooks, artifacts."),
    concurrency: int = typer.Option(100, help="Threads in this worker (the work is I/O)."),
    hostname: str | None = typer.Option(None, help="Celery node name (default: <queues>@<host>)."),
    loglevel: str = typer.Option("INFO", help="Log level."),
) -> None:
    """Run a Celery worker (threads pool) on the given queues."""
    from services.worker.app import celery_app
    from shared.logs import configure_logging

    configure_logging("worker")
    quiet_root_warning()
    name = hostname or f"{queues.replace(',', '+')}@%h"
    celery_app.worker_main(
        argv=[
            "worker",
            f"--queues={queues}",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--hostname={name}",
            f"--loglevel={loglevel}",
            "--without-mingle",
            "--without-gossip",
            *(["--task-events"] if get_settings().task_events else []),
        ]
    )


def quiet_root_warning() -> None:
    """Celery prints a screenful when run as root; one log line says the same."""
    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        logging.getLogger("reelmill.worker").warning("running as root: fine in a throwaway container, not elsewhere")


def beat(loglevel: str = typer.Option("INFO", help="Log level.")) -> None:
    """Run the scheduler that fires the sweeper (exactly one per deployment)."""
    from services.worker.app import celery_app
    from shared.logs import configure_logging

    configure_logging("beat")
    schedule = get_settings().effective_beat_schedule
    schedule.parent.mkdir(parents=True, exist_ok=True)
    celery_app.start(argv=["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


def flower(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(5555, help="Port to listen on."),
) -> None:
    """Run Flower, the operators' dashboard, behind basic auth (REELMILL_FLOWER_USER / REELMILL_FLOWER_PASSWORD).
    Refuses to listen beyond loopback without a password."""
    from services.cli import flower_auth

    settings = get_settings()
    problem = flower_auth.problem(host, settings)
    if problem:
        typer.echo(f"reelmill flower: {problem}", err=True)
        raise typer.Exit(2)
    from services.worker.app import celery_app

    os.environ.pop("FLOWER_BASIC_AUTH", None)  # Flower would split it on commas; the config file below wins anyway
    with flower_auth.config_file(settings) as conf:
        celery_app.start(argv=["flower", f"--address={host}", f"--port={port}", "--persistent=False", f"--conf={conf}"])


def migrate() -> None:
    """Bring the database schema up to date (Alembic `upgrade head`)."""
    from shared.db.migrate import upgrade_head

    settings = get_settings()
    if not settings.database_url:  # the laptop default: a SQLite file in the data dir, private
        from services.cli.datadir import prepare

        os.umask(0o077)
        prepare(settings.data_dir)

    upgrade_head()
    typer.echo("database schema is up to date")

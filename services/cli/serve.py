"""Process roles: `reelmill api | worker | beat | flower | migrate`. The Docker image's command picks one."""

from __future__ import annotations

import os

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


def beat(loglevel: str = typer.Option("INFO", help="Log level.")) -> None:
    """Run the scheduler that fires the sweeper (exactly one per deployment)."""
    from services.worker.app import celery_app
    from shared.logs import configure_logging

    configure_logging("beat")
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = os.environ.get("REELMILL_BEAT_SCHEDULE", str(settings.data_dir / "celerybeat-schedule"))
    celery_app.start(argv=["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


def flower(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(5555, help="Port to listen on."),
) -> None:
    """Run Flower, the operators' dashboard, behind basic auth from settings."""
    from services.worker.app import celery_app

    settings = get_settings()
    argv = ["flower", f"--address={host}", f"--port={port}", "--persistent=False"]
    if settings.flower_password is not None:
        os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    celery_app.start(argv=argv)


def migrate() -> None:
    """Bring the database schema up to date (Alembic `upgrade head`)."""
    from shared.db.migrate import upgrade_head

    upgrade_head()
    typer.echo("database schema is up to date")

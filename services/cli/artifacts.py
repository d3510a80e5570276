"""`reelmill artifacts prune`: delete stored videos past retention now (an operator's tool, run against the
database and the artifact store directly; the sweeper does the same every few seconds)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

app = typer.Typer(help="Operate the artifact store (the copies of every render's video).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Operate the artifact store (the copies of every render's video)."""


@app.command("prune")
def prune(
    older_than_days: Annotated[
        float | None,
        typer.Option(help="Also delete videos stored more than this many days ago, whatever their expiry."),
    ] = None,
) -> None:
    """Delete artifacts whose retention ran out (REELMILL_ARTIFACT_RETENTION_DAYS); they then say `expired`."""
    from shared.artifacts.sweep import expire_due
    from shared.db.migrate import upgrade_head
    from shared.timeutil import utcnow

    if older_than_days is not None and older_than_days < 0:
        typer.echo("error: --older-than-days must be 0 or more", err=True)
        raise typer.Exit(2)
    upgrade_head()  # the database this service uses (REELMILL_DATABASE_URL or the data dir's SQLite file)
    now = utcnow()
    cutoff = now - timedelta(days=older_than_days) if older_than_days is not None else None
    deleted = expire_due(now, stored_before=cutoff)
    typer.echo(f"deleted {deleted} expired artifacts")

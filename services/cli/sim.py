"""`reelmill sim`: serve the NemoVideo simulator on loopback.

Options override the ``REELMILL_SIM_*`` environment, which overrides ``SimConfig``'s defaults. Every knob is an
environment variable (``services/nemo_sim/README.md``); the common ones are options too.
"""

from __future__ import annotations

from typing import Any

import typer


def sim(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (keep it loopback)."),
    port: int = typer.Option(8300, help="Port to listen on."),
    time_scale: float | None = typer.Option(None, help="Multiply every upstream duration by this."),
    silent_share: float | None = typer.Option(None, help="Share of message runs that send no text."),
    seed: int | None = typer.Option(None, help="Seed of the simulator's decisions."),
    render_shape: str | None = typer.Option(None, help="Render status shape: A, B or both."),
    legacy_events: bool | None = typer.Option(
        None, "--legacy-events/--adk-events", help="Flat legacy SSE events instead of ADK's."
    ),
    anonymous_credits: int | None = typer.Option(None, help="Credits of each new anonymous user (default 100)."),
    state_file: str | None = typer.Option(
        None, help="Keep users, tokens, credits, sessions and renders in this file across restarts."
    ),
    log_level: str | None = typer.Option(None, help="Log level (default warning)."),
) -> None:
    import uvicorn
    from pydantic import ValidationError

    from services.nemo_sim.app import create_app
    from services.nemo_sim.config import SimConfig
    from services.nemo_sim.persist import StateFileError

    chosen: dict[str, Any] = {
        "time_scale": time_scale,
        "silent_share": silent_share,
        "seed": seed,
        "render_shape": render_shape,
        "legacy_events": legacy_events,
        "anonymous_credits": anonymous_credits,
        "state_file": state_file,
        "log_level": log_level,
    }
    try:
        config = SimConfig(**{k: v for k, v in chosen.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        app = create_app(config)
    except StateFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--state-file") from None
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=config.log_level.lower(),
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,  # open message streams must not hold a stop for minutes
    )

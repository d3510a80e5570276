"""`reelmill sim`: serve the NemoVideo simulator on loopback.

Options override the ``REELMILL_SIM_*`` environment, which overrides ``SimConfig``'s defaults.
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
    log_level: str | None = typer.Option(None, help="Log level (default warning)."),
) -> None:
    import uvicorn
    from pydantic import ValidationError

    from services.nemo_sim.app import create_app
    from services.nemo_sim.config import SimConfig

    chosen: dict[str, Any] = {
        "time_scale": time_scale,
        "silent_share": silent_share,
        "seed": seed,
        "render_shape": render_shape,
        "legacy_events": legacy_events,
        "log_level": log_level,
    }
    try:
        config = SimConfig(**{k: v for k, v in chosen.items() if v is not None})
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level=config.log_level.lower(),
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,  # open message streams must not hold a stop for minutes
    )

"""The `reelmill` command line: one entry point for every process role and for API users.

Each command lives in a module named after it; this file only wires them together.
"""

from __future__ import annotations

import typer

from services.cli import artifacts, batch, download, keys, serve, sim, submit, tenants, up

app = typer.Typer(
    name="reelmill",
    help="reelmill: turn prompts, scripts and clips into videos through NemoVideo, for thousands of jobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# process roles (the Docker image's command picks one)
app.command("api")(serve.api)
app.command("worker")(serve.worker)
app.command("beat")(serve.beat)
app.command("flower")(serve.flower)
app.command("migrate")(serve.migrate)
app.command("up")(up.up)
app.command("sim", help="Run the NemoVideo simulator (for development, tests and benchmarks).")(sim.sim)

# operators
app.add_typer(keys.app, name="keys")
app.add_typer(tenants.app, name="tenants")
app.add_typer(artifacts.app, name="artifacts")

# API users (talk to a running API with REELMILL_API_URL / REELMILL_API_KEY)
app.command("submit")(submit.submit)
app.command("download")(download.download)
batch.app.command("download")(download.batch_download)
app.add_typer(batch.app, name="batch")


if __name__ == "__main__":  # pragma: no cover
    app()

"""The `reelmill` command line: one entry point for every process role and for API users.

Each command lives in a module named after it; this file only wires them together.
"""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

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


def main() -> None:
    """The `reelmill` command. A setting the environment gives a value it cannot take ends the command with one
    line per setting and exit code 2, not a traceback (which would also echo the value: it may be a secret)."""
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for error in exc.errors(include_input=False, include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "?"
            env = name if name.isupper() else f"REELMILL_{name.upper()}"
            print(f"reelmill: invalid setting {env}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()

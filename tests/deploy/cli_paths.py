"""Resolve a `reelmill ...` command line against the real CLI without running it."""

from __future__ import annotations

from typing import Any

import typer

from services.cli.main import app


def parse_cli(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Walk ``argv`` through the CLI's groups to its command and parse the options as `reelmill` would.

    Returns the command path and its parsed parameters; raises if a command or an option does not exist or a
    value does not convert."""
    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("reelmill", [], resilient_parsing=True)
    args, path = list(argv), ["reelmill"]
    while hasattr(cmd, "get_command"):  # a group: the next word names a subcommand
        if not args:
            raise LookupError(f"{' '.join(path)} needs a subcommand")
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            raise LookupError(f"no command {args[0]!r} under {' '.join(path)}")
        path.append(args.pop(0))
        cmd = sub
        if hasattr(cmd, "get_command"):
            ctx = cmd.make_context(path[-1], [], parent=ctx, resilient_parsing=True)
    parsed = cmd.make_context(path[-1], args, parent=ctx)
    return " ".join(path[1:]), dict(parsed.params)

"""The CLI's consoles: a terminal gets rich's usual layout; a pipe or a file gets whole lines (rich would otherwise
hard-wrap everything at 80 columns, splitting ids and URLs a script wants to read)."""

from __future__ import annotations

import sys

from rich.console import Console

PIPE_WIDTH = 10_000


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, soft_wrap=True, width=PIPE_WIDTH)

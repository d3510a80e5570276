"""Connection resets: the client sees a transport error and no status line.

ASGI has no way to reset a connection, so the app keeps the server's transport for each request
(``capture``, from the ``send`` callable uvicorn hands in) and aborts it with ``SO_LINGER`` 0, which sends a
TCP RST. ``ResetResponse`` resets before anything is done (a fault fired on arrival); the ledger middleware
resets at the reply's first byte when the request was marked ``reset_after_accept`` (its work is done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

TRANSPORT_KEY = "sim_transport"
RESET_AFTER_ACCEPT = "sim_reset_after_accept"
ENTRY_KEY = "sim_entry"
log = logging.getLogger(__name__)


def capture(scope: Scope, send: Send) -> None:
    """Keep the request's transport: uvicorn's ``send`` is a method of an object that holds it."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    scope.setdefault("state", {})[TRANSPORT_KEY] = transport


def note(scope: Scope, key: str, value: Any) -> None:
    """Add ``key`` to the request's entry in the request log, if it has one."""
    entry = scope.get("state", {}).get(ENTRY_KEY)
    if entry is not None:
        entry[key] = value


async def reset_connection(scope: Scope) -> bool:
    """Abort the connection with a TCP RST; False when there is no transport to abort."""
    transport = scope.get("state", {}).get(TRANSPORT_KEY)
    if transport is None:
        log.warning("cannot reset the connection: the server's transport is not reachable")
        return False
    if not transport.is_closing():
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    for _ in range(3):  # let the server notice the lost connection, so it sends nothing (not even a 500)
        await asyncio.sleep(0)
    return True


class ResetResponse(Response):
    """No reply at all: the connection is reset before the first byte."""

    def __init__(self) -> None:
        self.status_code = 0
        self.background = None
        self.raw_headers = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        note(scope, "reset", "before")
        if not await reset_connection(scope):
            raise RuntimeError("connection reset fault: no transport to reset")

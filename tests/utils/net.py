"""Small network helpers for tests: free ports and waiting for a server to answer."""

from __future__ import annotations

import os
import random
import socket
import time

import httpx

_HANDED_OUT: set[int] = set()
# Under pytest-xdist each worker picks ports from its own band below the OS's ephemeral range (32768 and up on
# Linux): a port one worker was handed but has not bound yet is never another worker's, nor a port the OS hands
# out for bind(("", 0)) or an outgoing connection. A plain run (no worker id), or a worker whose band would reach
# the ephemeral range (more than five), asks the OS.
_BAND = 4000
_FIRST = 12000
_EPHEMERAL = 32768


def _band() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return None
    start = _FIRST + int(worker[2:]) * _BAND
    return range(start, start + _BAND) if start + _BAND <= _EPHEMERAL else None


def free_port() -> int:
    """A loopback port free now, and never one this process was given before (the OS may hand the same ephemeral
    port out twice in a row, e.g. to a stack's Flower and simulator)."""
    band = _band()
    for _ in range(20 * _BAND):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if band is None:
                s.bind(("127.0.0.1", 0))
            else:
                try:
                    s.bind(("127.0.0.1", random.choice(band)))
                except OSError:  # in use: try another
                    continue
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free loopback port left")


def wait_http(url: str, timeout: float = 60.0, proc=None) -> None:
    """Wait until ``url`` answers any HTTP status; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")

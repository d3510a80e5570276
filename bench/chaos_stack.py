"""The processes of the chaos benchmark (bench/chaos.py), each its own: a PostgreSQL server made with `initdb` in a
temporary directory on a free port (never the machine's shared cluster), a Redis server without persistence, the
simulator, and reelmill's production roles (`migrate`, `api`, a steps+webhooks worker, a streams worker, `beat`),
started the way a deployment starts them. Every process gets its settings through the environment, never its
arguments (the upstream token among them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.utils.stack import redis_binary  # noqa: E402  (redis-server, else the embedded valkey the tests use)


def _pg_bin() -> Path:
    """Where initdb and pg_ctl live: BENCH_PG_BIN, else wherever initdb is on PATH, else Debian's layout."""
    if os.environ.get("BENCH_PG_BIN"):
        return Path(os.environ["BENCH_PG_BIN"])
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return versions[-1] if versions else Path("/usr/local/bin")


PG_BIN = _pg_bin()
ROLES = {
    "api": ["api", "--host", "127.0.0.1"],
    "steps": ["worker", "--queues", "steps,webhooks", "--concurrency", "50", "--hostname", "steps@%h"],
    "streams": ["worker", "--queues", "streams", "--concurrency", "20", "--hostname", "streams@%h"],
    "beat": ["beat"],
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


@dataclass
class Role:
    name: str
    popen: subprocess.Popen
    log: Path
    restarts: int = 0
    log_from: int = 0  # where this run of the role starts in its (appended) log


@dataclass
class ChaosStack:
    """Everything the run needs, in one temporary directory (removed at the end unless ``keep``)."""

    settings: dict[str, str]
    sim_env: dict[str, str]
    token: str
    keep: bool = False
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="reelmill-chaos-")))
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    roles: dict[str, Role] = field(default_factory=dict)
    others: list[subprocess.Popen] = field(default_factory=list)
    redis_proc: subprocess.Popen | None = None

    # ---- environment -------------------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.pg_port}/reelmill"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("REELMILL_") and k != "NEMO_TOKEN"}
        return {
            **base,
            **self.settings,
            "REELMILL_DATABASE_URL": self.database_url,
            "REELMILL_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "REELMILL_NEMO_BASE_URL": self.sim_url,
            "REELMILL_NEMO_TOKEN": self.token,
            "REELMILL_DATA_DIR": str(self.home / "data"),
            "REELMILL_PUBLIC_URL": self.api_url,
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
        log = self.home / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        return popen, log

    # ---- PostgreSQL: its own server, stopped and started for real ---------------------------------------------

    def _pg(self, *args: str) -> list[str]:
        """A PostgreSQL command, as the `postgres` user when running as root (initdb refuses root)."""
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def init_postgres(self) -> None:
        data = self.home / "pg"
        data.mkdir()
        os.chmod(self.home, 0o755)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            self._pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.start_postgres()
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE reelmill")

    def start_postgres(self) -> None:
        options = (
            f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.home / 'pg'} "
            "-c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.home / "pg" / "server.log"
        cmd = self._pg("pg_ctl", "-D", str(self.home / "pg"), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def stop_postgres(self) -> None:
        cmd = self._pg("pg_ctl", "-D", str(self.home / "pg"), "-m", "fast", "-w", "-t", "60", "stop")
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart_postgres(self, down_s: float = 1.0) -> None:
        """Stop the server (every connection cut), stay down ``down_s``, start it again."""
        self.stop_postgres()
        time.sleep(down_s)
        self.start_postgres()

    # ---- Redis ---------------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        args = [redis_binary(), "--port", str(self.redis_port)]
        args += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.redis_proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.redis().ping(), 10, "Redis to answer")

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, socket_connect_timeout=1, socket_timeout=5)

    def flushall(self) -> None:
        self.redis().flushall()

    def restart_redis_empty(self) -> None:
        with contextlib.suppress(redis.ConnectionError):  # it hangs up as it goes
            self.redis().shutdown(nosave=True)
        if self.redis_proc is not None:
            self.redis_proc.wait(10)
        self.start_redis()

    # ---- the simulator and reelmill's roles ----------------------------------------------------------------

    def start_sim(self) -> None:
        env = {**os.environ, **self.sim_env}
        args = [sys.executable, "-m", "services.cli.main", "sim", "--host", "127.0.0.1", "--port", str(self.sim_port)]
        popen, _ = self._spawn("sim", args, env)
        self.others.append(popen)
        wait_for(lambda: httpx.get(f"{self.sim_url}/_sim/health", timeout=1).status_code == 200, 60, "the sim")

    def reelmill(self, *args: str) -> str:
        """Run a one-off `reelmill` command (migrate, keys create) and return its standard output."""
        cmd = [sys.executable, "-m", "services.cli.main", *args]
        done = subprocess.run(cmd, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"reelmill {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def start_role(self, name: str) -> Role:
        args = [sys.executable, "-m", "services.cli.main", *ROLES[name]]
        if name == "api":
            args += ["--port", str(self.api_port)]
        log = self.home / "logs" / f"{name}.log"
        offset = log.stat().st_size if log.exists() else 0
        popen, log = self._spawn(name, args, self.env())
        old = self.roles.get(name)
        role = Role(name, popen, log, restarts=(old.restarts + 1) if old else 0, log_from=offset)
        self.roles[name] = role
        return role

    def kill_role(self, name: str) -> None:
        """SIGKILL the role's process (nothing it holds is released; no shutdown hook runs)."""
        role = self.roles[name]
        if role.popen.poll() is None:
            role.popen.send_signal(signal.SIGKILL)
            role.popen.wait(10)

    def wait_api(self, timeout: float = 60) -> None:
        wait_for(lambda: httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200, timeout, "the API")

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        role = self.roles[name]

        def ready() -> bool:
            with role.log.open("rb") as f:
                f.seek(role.log_from)
                return b"ready" in f.read()

        wait_for(ready, timeout, f"{name} to be ready")

    def close(self) -> None:
        for role in self.roles.values():
            if role.popen.poll() is None:
                role.popen.terminate()
        for role in self.roles.values():
            _wait_or_kill(role.popen)
        for popen in self.others:
            popen.terminate()
            _wait_or_kill(popen)
        if self.redis_proc is not None:
            self.redis_proc.terminate()
            _wait_or_kill(self.redis_proc)
        self.stop_postgres()
        if not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)


def _wait_or_kill(popen: subprocess.Popen, timeout: float = 20) -> None:
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(5)


def exit_on_sigterm(signum: int, frame: object) -> None:
    """A benchmark's SIGTERM handler: exit through ``finally``, so every process the run started is stopped."""
    raise SystemExit(128 + signum)

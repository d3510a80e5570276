"""A real API process (`reelmill api`) on a free loopback port, for tests that need one: HTTP parsing by uvicorn,
its own engine and threadpool, and settings of its own (SQLite, small limits) without touching the suite's."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.utils import stack
from tests.utils.net import free_port, wait_http


def sqlite_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The suite's environment on the laptop default: no database URL, so the SQLite file in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if k != "REELMILL_DATABASE_URL"}
    env["REELMILL_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=stack.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def new_key(env: dict[str, str], tenant: str | None = None) -> str:
    """A fresh API key made by `reelmill keys create` against the database ``env`` names."""
    return run_cli(["keys", "create", "--tenant", tenant or f"t-{uuid.uuid4().hex[:8]}"], env).strip()


@dataclass
class ServedApi:
    env: dict[str, str]
    argv_prefix: list[str] = field(default_factory=lambda: [sys.executable, "-m", "services.cli.main"])
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedApi:
        self.log = stack.LOG_DIR / f"api-{self.port}.log"
        with self.log.open("wb") as handle:
            self.proc = subprocess.Popen(
                [*self.argv_prefix, "api", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=stack.ROOT,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        wait_http(f"{self.url}/healthz", timeout=60, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log and self.log.exists() else ""

    def client(self, key: str | None = None, timeout: float = 60.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

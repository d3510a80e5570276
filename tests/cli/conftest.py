"""The CLI talks HTTP to a real `reelmill api` process (on a free loopback port), run as a subprocess itself."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.batches.helpers import end_open_jobs
from tests.utils import stack
from tests.utils.net import free_port, wait_http


@pytest.fixture(scope="session")
def api_server(database: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    proc = stack.start_process("api", ["api", "--host", "127.0.0.1", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", timeout=120, proc=proc.popen)
        yield url
    finally:
        proc.stop()


@dataclass
class Cli:
    url: str
    key: str | None
    cwd: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REELMILL_API_KEY", "REELMILL_API_URL")}
        env.update({"REELMILL_API_URL": self.url, "REELMILL_CLI_POLL_S": "0.2", "COLUMNS": "200"})
        if self.key is not None:
            env["REELMILL_API_KEY"] = self.key
        env.update(extra)
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", *args],
            cwd=self.cwd,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli.main", *args],
            cwd=self.cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture()
def cli(api_server: str, tenant: stack.Tenant, tmp_path: Path) -> Iterator[Cli]:
    yield Cli(api_server, tenant.key, tmp_path)
    end_open_jobs(tenant.name)

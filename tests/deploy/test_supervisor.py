"""services/cli/supervisor.py with small real child processes: output, process groups, stop order, kills,
and children dying with a killed supervisor."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from services.cli.supervisor import ChildSpec, Supervisor, describe_exit
from tests.deploy.up_runner import gone
from tests.utils.waiting import wait_until

# Says hello, then on SIGTERM appends its role to a file and exits 0.
POLITE = textwrap.dedent(
    """
    import signal, sys, time
    role, record = sys.argv[1], sys.argv[2]
    def bye(*_):
        with open(record, "a") as fh:
            fh.write(role + "\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
    print("hello from", role, flush=True)
    while True:
        time.sleep(0.02)
    """
)
# Ignores SIGTERM and starts a grandchild in its own process group.
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("grandchild", grandchild.pid, flush=True)
    while True:
        time.sleep(0.02)
    """
)


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


@pytest.fixture()
def sup(tmp_path: Path):
    supervisor = Supervisor(tmp_path / "logs", env=dict(os.environ), out=io.StringIO())
    yield supervisor
    supervisor.stop([], threading.Event())  # whatever a failed test left running


def test_output_is_prefixed_on_the_terminal_and_raw_in_the_role_log(sup: Supervisor, tmp_path: Path) -> None:
    child = sup.start(ChildSpec("api", python("print('line one'); print('line two')")))
    wait_until(child.exited)
    assert child.reap() == 0
    terminal = sup.out.getvalue().splitlines()
    assert terminal == [f"{'api':<15}| line one", f"{'api':<15}| line two"]
    assert (tmp_path / "logs" / "api.log").read_text() == "line one\nline two\n"


def test_children_get_their_own_process_group_and_the_given_env(sup: Supervisor) -> None:
    spec = ChildSpec("env", python("import os; print(os.environ['ROLE_ONLY'])"), env={"ROLE_ONLY": "yes"})
    child = sup.start(spec)
    assert os.getpgid(child.proc.pid) == child.proc.pid != os.getpgid(0)
    assert os.getsid(child.proc.pid) == child.proc.pid  # a new session: the terminal's Ctrl-C is not theirs
    wait_until(child.exited)
    child.reap()
    assert "| yes" in sup.out.getvalue()


def test_first_dead_names_the_child_that_exited(sup: Supervisor) -> None:
    sup.start(ChildSpec("long", python("import time; time.sleep(30)")))
    sup.start(ChildSpec("short", python("import sys; sys.exit(3)")))
    wait_until(lambda: sup.first_dead() is not None)
    dead = sup.first_dead()
    assert dead is not None and dead.role == "short"
    assert describe_exit(dead.reap()) == "exit code 3"
    assert describe_exit(-9) == "killed by SIGKILL"


def test_stop_goes_stage_by_stage(sup: Supervisor, tmp_path: Path) -> None:
    record = tmp_path / "stopped.txt"
    for role in ("redis", "worker-b", "api", "worker-a", "flower"):
        sup.start(ChildSpec(role, python(POLITE, role, str(record))))
    wait_until(lambda: sup.out.getvalue().count("hello from") == 5)
    sup.stop([["api"], ["worker-a", "worker-b"], ["flower"]], threading.Event())
    order = record.read_text().split()
    assert order[0] == "api" and sorted(order[1:3]) == ["worker-a", "worker-b"]
    assert order[3:] == ["flower", "redis"]  # a role in no stage stops last
    assert all(c.exit_code == 0 for c in sup.children.values())


def test_a_child_that_ignores_sigterm_is_killed_with_its_group(sup: Supervisor) -> None:
    child = sup.start(ChildSpec("stubborn", python(STUBBORN), stop_timeout=0.5))
    wait_until(lambda: "grandchild" in sup.out.getvalue())
    grandchild = psutil.Process(int(sup.out.getvalue().split("grandchild")[1].split()[0]))
    started = time.monotonic()
    sup.stop([["stubborn"]], threading.Event())
    assert child.exit_code == -signal.SIGKILL
    assert time.monotonic() - started >= 0.5
    wait_until(lambda: not gone([grandchild]))
    assert "stubborn did not stop in time; killing it" in sup.out.getvalue()


def test_hurry_kills_at_once(sup: Supervisor) -> None:
    child = sup.start(ChildSpec("stubborn", python(STUBBORN), stop_timeout=60))
    wait_until(lambda: "grandchild" in sup.out.getvalue())
    hurry = threading.Event()
    hurry.set()
    sup.stop([["stubborn"]], hurry)
    assert child.exit_code == -signal.SIGKILL


SUPERVISOR_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from services.cli.supervisor import ChildSpec, Supervisor
    sup = Supervisor(Path(sys.argv[1]), env=dict(os.environ))
    child = sup.start(ChildSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(300)"]))
    print(child.proc.pid, flush=True)
    time.sleep(300)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(python(SUPERVISOR_SCRIPT, str(tmp_path)), stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(proc.stdout.readline()))
        assert child.is_running()
        proc.kill()  # SIGKILL: the supervisor gets no chance to clean up
        proc.wait(10)
        wait_until(lambda: not gone([child]), timeout=10)
    finally:
        proc.kill()


def test_only_the_lines_show_picks_reach_the_terminal_and_logs_are_private(tmp_path: Path) -> None:
    picked = Supervisor(
        tmp_path / "logs", env=dict(os.environ), out=io.StringIO(), show=lambda r, line: "ERROR" in line
    )
    child = picked.start(ChildSpec("api", python("print('started'); print('12:00:00 ERROR boom'); print('done')")))
    wait_until(child.exited)
    child.reap()
    assert picked.out.getvalue().splitlines() == [f"{'api':<15}| 12:00:00 ERROR boom"]
    log = tmp_path / "logs" / "api.log"
    assert log.read_text() == "started\n12:00:00 ERROR boom\ndone\n"  # everything is in the file
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "logs").stat().st_mode & 0o777) == "0o700"
    assert list(child.tail) == ["started", "12:00:00 ERROR boom", "done"]  # kept to explain a death


def test_a_log_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "logs" / "api.log").symlink_to(tmp_path / "elsewhere")
    sup = Supervisor(tmp_path / "logs", env=dict(os.environ), out=io.StringIO())
    with pytest.raises(OSError):
        sup.start(ChildSpec("api", python("print('x')")))
    assert (tmp_path / "elsewhere").read_text() == ""

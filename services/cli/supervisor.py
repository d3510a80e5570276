"""A small process supervisor for `reelmill up`: children in their own process groups, their output written to
`<log_dir>/<role>.log` (0600) and, for the lines ``show(role, line)`` picks, to the terminal (prefixed by role),
stopped in stages, none left behind.

Children die with the supervisor: each sets PR_SET_PDEATHSIG on Linux (the signal fires when the *thread* that
forked it exits, so spawn from the main thread). Being in their own session, they do not get the terminal's
Ctrl-C; the supervisor decides the order in which they stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

PR_SET_PDEATHSIG = 1
PREFIX_WIDTH = 15
TAIL_LINES = 20


def show_everything(role: str, line: str) -> bool:
    return True


@dataclass(frozen=True)
class ChildSpec:
    role: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's child environment
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0  # then SIGKILL to the whole process group
    death_signal: int = signal.SIGTERM  # what the child gets if the supervisor dies


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent: loading a library between fork and exec could deadlock."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def _die_with_parent(death_signal: int) -> Callable[[], None]:
    parent = os.getpid()

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


class Child:
    """One running child process and the thread that copies its output."""

    def __init__(self, spec: ChildSpec, proc: subprocess.Popen, log: BinaryIO, sink: Callable[[str, str], None]):
        self.spec, self.proc, self.log = spec, proc, log
        self.exit_code: int | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)  # the last lines, to explain a death
        self._reader = threading.Thread(target=self._copy, args=(sink,), name=f"out-{spec.role}", daemon=True)
        self._reader.start()

    @property
    def role(self) -> str:
        return self.spec.role

    def _copy(self, sink: Callable[[str, str], None]) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            with contextlib.suppress(OSError, ValueError):
                self.log.write(raw)
                self.log.flush()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.tail.append(line)
            sink(self.role, line)

    def exited(self) -> bool:
        """True once the process has exited; it stays a zombie (its pid and group id reserved) until reap()."""
        if self.exit_code is not None:
            return True
        try:
            res = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return res is not None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def reap(self) -> int:
        """Kill whatever is left in the child's process group, then collect its exit code."""
        if self.exit_code is None:
            self.signal_group(signal.SIGKILL)
            self.exit_code = self.proc.wait()
            self._reader.join(timeout=2)
            with contextlib.suppress(OSError):
                if self.proc.stdout is not None:
                    self.proc.stdout.close()
                self.log.close()
        return self.exit_code


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Starts children, reports the first one that dies, stops them in stages."""

    def __init__(
        self,
        log_dir: Path,
        env: dict[str, str],
        out: TextIO | None = None,
        show: Callable[[str, str], bool] = show_everything,
    ) -> None:
        self.log_dir, self.env, self.show = log_dir, env, show
        self.out = out or sys.stdout
        self.children: dict[str, Child] = {}
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _child_line(self, role: str, line: str) -> None:
        if self.show(role, line):
            self.say(role, line)

    def say(self, role: str, line: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.out.write(f"{role:<{PREFIX_WIDTH}}| {line}\n")
            self.out.flush()

    def announce(self, lines: list[str]) -> None:
        """Lines for the terminal only (never the log files): the banner, with its dev key and password."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self.out.write("\n" + "\n".join(lines) + "\n\n")
            self.out.flush()

    def open_log(self, role: str) -> BinaryIO:
        """``<log_dir>/<role>.log`` for appending, 0600, never through a symlink."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.log_dir / f"{role}.log", flags, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")

    def start(self, spec: ChildSpec) -> Child:
        log = self.open_log(spec.role)
        proc = subprocess.Popen(
            spec.argv,
            env={**self.env, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session and process group: no terminal signals, killpg-able
            # resolves nothing after fork: prctl was looked up at import, so this is safe with reader threads
            preexec_fn=_die_with_parent(spec.death_signal),
        )
        child = Child(spec, proc, log, self._child_line)
        self.children[spec.role] = child
        return child

    def first_dead(self) -> Child | None:
        return next((c for c in self.children.values() if c.exit_code is None and c.exited()), None)

    def stop(self, stages: Iterable[Iterable[str]], hurry: threading.Event | None = None) -> None:
        """Stop children stage by stage (each stage in parallel); a child still alive after its stop_timeout, or
        once ``hurry`` is set, is killed with its whole process group. Children in no stage are stopped last."""
        stages = [list(stage) for stage in stages]
        named = {role for stage in stages for role in stage}
        stages.append([role for role in self.children if role not in named])
        for stage in stages:
            self._stop_stage([self.children[r] for r in stage if r in self.children], hurry)

    def _stop_stage(self, children: list[Child], hurry: threading.Event | None) -> None:
        started = time.monotonic()
        for child in children:
            if child.exit_code is None and not child.exited():
                child.signal_group(child.spec.stop_signal)
        pending = list(children)
        while pending:
            waited = time.monotonic() - started
            for child in list(pending):
                late = waited > child.spec.stop_timeout or (hurry is not None and hurry.is_set())
                if child.exit_code is not None or child.exited() or late:
                    if late and not child.exited():
                        self.say("reelmill", f"{child.role} did not stop in time; killing it")
                    child.reap()
                    pending.remove(child)
            time.sleep(0.05)

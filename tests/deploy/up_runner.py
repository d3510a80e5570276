"""Run `reelmill up` as a real subprocess on free loopback ports and watch it (used by the up tests)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.utils.net import free_port

BANNER = "reelmill is up."


def clean_env(data_dir: Path | None, **extra: str) -> dict[str, str]:
    """Our environment without any REELMILL_* or token setting, so `up` uses its own defaults; `up` records where
    it runs under XDG_STATE_HOME, kept beside the data dir (never the real ~/.local/state)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELMILL_") and k != "NEMO_TOKEN"}
    if data_dir is not None:
        env.update(REELMILL_DATA_DIR=str(data_dir), XDG_STATE_HOME=str(data_dir.parent / "xdg-state"))
    env.update(extra)
    return env


def gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The ones still running (a zombie waiting for its reaper counts as gone)."""
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    return left


@dataclass
class Up:
    data_dir: Path
    sim: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    flower_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    lines: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    python: str = sys.executable  # the interpreter that runs `reelmill up` (the 3.12/3.13 smoke tests pick theirs)
    extra_args: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def flower(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def argv(self) -> list[str]:
        ports = ["--port", str(self.port), "--flower-port", str(self.flower_port), "--sim-port", str(self.sim_port)]
        sim = ["--sim"] if self.sim else []
        return [self.python, "-m", "services.cli.main", "up", *sim, *ports, *self.extra_args]

    def start(self) -> Up:
        env = clean_env(self.data_dir, **self.extra_env)
        self.proc = subprocess.Popen(
            self.argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc is not None
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader drain
                raise AssertionError(f"reelmill up exited ({self.proc.returncode}):\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output()[-4000:]}")
            time.sleep(0.1)

    def again(self) -> Up:
        """A new `up` on the same data dir and settings (new ports: the old ones may linger in TIME_WAIT)."""
        return Up(self.data_dir, self.sim, dict(self.extra_env), python=self.python, extra_args=list(self.extra_args))

    def banner_value(self, pattern: str) -> str:
        match = re.search(pattern, self.output())
        assert match, f"{pattern!r} not in the output"
        return match.group(1)

    def descendants(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children(recursive=True)

    def child(self, needle: str) -> psutil.Process:
        return next(p for p in self.descendants() if needle in " ".join(p.cmdline()))

    def signal(self, sig: int = signal.SIGINT) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 90.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Last resort for a failed test: the supervisor and everything it started."""
        if self.proc is None or self.proc.poll() is not None:
            return
        procs = self.descendants()
        self.proc.kill()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.proc.wait(10)

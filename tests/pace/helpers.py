"""Helpers for the pace tests: waiting for a condition, a private Redis that a test may flush or stop, the
"database view" a rebuild reads (a directory of holder files), and the bodies of the worker processes."""

from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from shared.pace import Limiter, PaceConfig
from tests.utils import stack


@dataclass
class PrivateRedis:
    """A Redis server of the test's own, so that it may be flushed or stopped without touching the suite's."""

    port: int
    proc: subprocess.Popen | None = None
    clients: list[redis.Redis] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = stack.start_redis(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def client(self) -> redis.Redis:
        # short timeouts: a test of an unreachable Redis should not wait out the defaults
        made = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        self.clients.append(made)
        return made


class TruthDir:
    """The engine's view of who holds what, as the database would give it: one file per holder, written before
    the holder asks for a slot and removed after it has released it (so the view covers every real hold)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def hold(self, resource: str, holder: str, ttl_s: float) -> None:
        tmp = self.root / f".{resource}.{holder}.tmp"
        tmp.write_text(str(time.time() + ttl_s))
        tmp.replace(self.root / f"{resource}.{holder}")

    def drop(self, resource: str, holder: str) -> None:
        (self.root / f"{resource}.{holder}").unlink(missing_ok=True)

    def view(self, credential: str) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for path in self.root.iterdir():
            if path.name.startswith("."):
                continue
            resource, holder = path.name.split(".", 1)
            try:
                out.setdefault(resource, {})[holder] = float(path.read_text())
            except (FileNotFoundError, ValueError):
                continue  # dropped (or being written) while we listed
        return out


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at the same instant as a start closes first)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda ev: (ev[0], ev[1]))
    best = running = 0
    for _, step in events:
        running += step
        best = max(best, running)
    return best


# ---- bodies of worker processes (spawned: module-level, arguments picklable) ----------------------------------


def hammer_slots(
    url: str, credential: str, cap: int, grants_wanted: int, truth_root: str | None, progress: Any, go: Any, out: Any
) -> None:
    """From ``go`` (a barrier of all the workers) on, acquire and release ``streams`` slots as fast as possible
    until ``grants_wanted`` were
    granted, recording each hold as a monotonic interval observed inside the true hold (after the grant, before
    the release), so overlapping observed intervals prove overlapping holds."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    truth = TruthDir(Path(truth_root)) if truth_root else None
    rebuilds = 0

    def rebuild(cred: str) -> dict[str, dict[str, float]]:
        nonlocal rebuilds
        rebuilds += 1
        return truth.view(cred) if truth else {}

    limiter = Limiter(client, credential, PaceConfig(max_streams=cap), rebuild=rebuild)
    intervals: list[tuple[float, float]] = []
    refusals: dict[str, int] = {}
    go.wait(60)  # a barrier: every process is set up before any starts
    deadline = time.monotonic() + 60
    i = 0
    while len(intervals) < grants_wanted and time.monotonic() < deadline:
        holder, i = f"{os.getpid()}-{i}", i + 1
        if truth:
            truth.hold("streams", holder, 5.0)
        grant = limiter.acquire("streams", holder, ttl_s=5.0)
        if grant:
            start = time.monotonic()
            time.sleep(random.uniform(0.0005, 0.004))  # the "upstream work" of the hold
            intervals.append((start, time.monotonic()))
            limiter.release("streams", holder)
            with progress.get_lock():
                progress.value += 1
        else:
            refusals[grant.reason.value] = refusals.get(grant.reason.value, 0) + 1
        if truth:
            truth.drop("streams", holder)
    out.put({"intervals": intervals, "refusals": refusals, "rebuilds": rebuilds})


def hammer_calls(url: str, credential: str, cls: str, rps: float, grants_wanted: int, go: Any, out: Any) -> None:
    """From ``go`` (a barrier of all the workers) on, take tokens of class ``cls`` until ``grants_wanted`` were granted;
    report the grants and the span
    of all calls."""
    client = redis.Redis.from_url(url)
    limiter = Limiter(client, credential, PaceConfig(rps=rps))
    go.wait(60)  # a barrier: every process is set up before any starts
    first_call = time.monotonic()
    granted = 0
    while granted < grants_wanted:
        wait = limiter.take(cls)
        if wait == 0.0:
            granted += 1
        else:
            time.sleep(min(wait, 0.02))  # what a caller does with the hint (shortened: we want contention)
    out.put({"granted": granted, "first_call": first_call, "last_call": time.monotonic()})


def observe_pace(url: str, credential: str, config: dict[str, Any], go: Any, out: Any) -> None:
    """Another worker's view of the pace: what `take`, `acquire` and the snapshot say there."""
    limiter = Limiter(redis.Redis.from_url(url), credential, PaceConfig(**config), rebuild=lambda cred: {})
    snap = limiter.snapshot()
    out.put(
        {
            "take_call": limiter.take("call"),
            "take_render": limiter.take("render"),
            "pause_call": limiter.pause_remaining("call"),
            "rates": snap.rates,
            "rate_limited": snap.rate_limited,
        }
    )


def hold_and_hang(url: str, credential: str, ttl_s: float, ready: Any) -> None:
    """Take a slot and never release it (the parent kills this process: a worker that died holding a slot)."""
    limiter = Limiter(redis.Redis.from_url(url), credential, PaceConfig(max_streams=1), rebuild=lambda cred: {})
    if limiter.acquire("streams", "dead-worker-job", ttl_s=ttl_s):
        ready.set()
    time.sleep(600)

"""The pace across OS processes: the caps and the rate hold for all of them together, through a flush too, and
a 429 seen by one process pauses and slows the class for every other."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from shared.pace import Limiter, PaceConfig
from tests.pace import helpers
from tests.pace.helpers import max_overlap
from tests.utils.waiting import wait_until

SPAWN = multiprocessing.get_context("spawn")


def _run(target: Any, arg_sets: list[tuple], timeout: float = 90) -> list[dict]:
    """Run ``target(*args, go, out)`` in a process per arg set, ``go`` a barrier that starts them together; their
    reports."""
    out, go = SPAWN.Queue(), SPAWN.Barrier(len(arg_sets))
    procs = [SPAWN.Process(target=target, args=(*args, go, out), daemon=True) for args in arg_sets]
    for proc in procs:
        proc.start()
    try:
        results = [out.get(timeout=timeout) for _ in procs]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return results


def test_cap_holds_across_processes(redis_url, credential) -> None:
    cap, progress = 3, SPAWN.Value("i", 0)
    results = _run(helpers.hammer_slots, [(redis_url, credential, cap, 100, None, progress)] * 4)
    intervals = [iv for r in results for iv in r["intervals"]]
    assert len(intervals) == 4 * 100
    assert max_overlap(intervals) <= cap
    assert sum(r["refusals"].get("full", 0) for r in results) > 0  # the cap was reached and defended


def test_rate_holds_across_processes(redis_url, credential) -> None:
    rps, each = 20.0, 10
    # one class per process: only the credential's bucket, shared by all classes, holds them to the rate
    results = _run(
        helpers.hammer_calls, [(redis_url, credential, cls, rps, each) for cls in ("stream", "render", "call")]
    )
    granted = sum(r["granted"] for r in results)
    span = max(r["last_call"] for r in results) - min(r["first_call"] for r in results)
    # every grant happened inside [first call, last call]; GCRA spaces grants 1/rps apart for all processes
    assert granted == 3 * each
    assert granted <= span * rps + 1, f"{granted} grants in {span:.2f}s at {rps}/s"


def test_flush_mid_run_never_goes_over_the_cap(private_redis, tmp_path) -> None:
    cap, progress = 3, SPAWN.Value("i", 0)
    client = private_redis.client()
    out, go = SPAWN.Queue(), SPAWN.Barrier(4)
    args = (private_redis.url, "default", cap, 150, str(tmp_path), progress, go, out)
    procs = [SPAWN.Process(target=helpers.hammer_slots, args=args, daemon=True) for _ in range(4)]
    for proc in procs:
        proc.start()
    try:
        for mark in (60, 200, 400):  # flush three times while they hammer
            wait_until(lambda mark=mark: progress.value >= mark, timeout=60)
            client.flushall()
        results = [out.get(timeout=90) for _ in procs]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    intervals = [iv for r in results for iv in r["intervals"]]
    assert len(intervals) == 4 * 150  # work went on after every flush
    assert max_overlap(intervals) <= cap
    assert sum(r["rebuilds"] for r in results) >= 3  # each flush was noticed and rebuilt from the view


def test_a_429_pauses_and_slows_every_process(redis_url, credential, client) -> None:
    config = {"rps": 8.0, "min_rps": 0.5}
    limiter = Limiter(client, credential, PaceConfig(**config))
    penalized = time.monotonic()
    limiter.penalize("call", 300.0)  # one worker saw a 429 ...
    (seen,) = _run(helpers.observe_pace, [(redis_url, credential, config)])  # ... another process looks
    floor = 300.0 - (time.monotonic() - penalized)
    assert floor <= seen["take_call"] <= 300 and floor <= seen["pause_call"] <= 300
    assert seen["take_render"] == 0.0  # other classes go on
    assert seen["rates"]["call"] == 4.0 and seen["rates"]["render"] == 8.0
    assert seen["rate_limited"]["call"] == 1

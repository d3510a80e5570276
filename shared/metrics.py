"""Service metrics, counted in Redis so that every worker's figures add up in one place.

Workers call the recorders below; they only add to in-process tallies (no I/O on the hot path), and a background
thread flushes the tallies to Redis once a second in one pipeline. A metrics hiccup never fails a job. The API's
`/metrics` reads the figures back, with gauges taken from the database and the queues (services/api/metrics.py).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter, deque
from typing import Any

from shared.redis_conn import get_redis

log = logging.getLogger(__name__)

PREFIX = "reelmill:metrics"
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
FLUSH_EVERY_S = 1.0


class _Tallies:
    """Recorders append to deques, which CPython appends to atomically: no lock on the hot path. A lock here was
    taken for every SQL statement of every thread, and a holder switched out by the GIL made the others queue
    behind it (13% of the streams worker's wall-clock samples in the pipeline benchmark). The flusher drains the
    deques and adds them up."""

    def __init__(self) -> None:
        self._counts: deque[tuple[str, str, int]] = deque()  # (hash key, field, increment)
        self._sums: deque[tuple[str, str, float]] = deque()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, key: str, field: str, by: int = 1) -> None:
        self._counts.append((key, field, by))
        if self._thread is None or not self._thread.is_alive():
            self._start()

    def add_float(self, key: str, field: str, by: float) -> None:
        self._sums.append((key, field, by))
        if self._thread is None or not self._thread.is_alive():
            self._start()

    def _start(self) -> None:
        with self._start_lock:  # once per process (and again after a fork, where the thread did not follow)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="metrics-flush", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_EVERY_S):
            self.flush()

    @staticmethod
    def _drain(pending: deque[tuple[str, str, Any]]) -> Counter[tuple[str, str]]:
        totals: Counter[tuple[str, str]] = Counter()
        while True:
            try:
                key, field, by = pending.popleft()
            except IndexError:  # empty: what is appended meanwhile goes out with the next flush
                return totals
            totals[(key, field)] += by

    def flush(self) -> None:
        counts, sums = self._drain(self._counts), self._drain(self._sums)
        if not counts and not sums:
            return
        try:
            pipe = get_redis().pipeline(transaction=False)
            for (key, field), value in counts.items():
                pipe.hincrby(key, field, value)
            for (key, field), value in sums.items():
                pipe.hincrbyfloat(key, field, value)
            pipe.sadd(f"{PREFIX}:stages", *{k.rsplit(":", 1)[-1] for k, _ in counts if ":step_seconds:" in k} or {""})
            pipe.execute()
        except Exception as exc:  # metrics never break the flow; these figures are lost
            log.debug("metrics flush failed: %s", exc)


_tallies = _Tallies()
atexit.register(_tallies.flush)


def flush() -> None:
    _tallies.flush()


def step_key(stage: str) -> str:
    return f"{PREFIX}:step_seconds:{stage}"


def step_finished(stage: str, seconds: float) -> None:
    key = step_key(stage)
    for bound in STEP_BUCKETS:
        if seconds <= bound:
            _tallies.add(key, f"le_{bound}")
    _tallies.add(key, "count")
    _tallies.add_float(key, "sum", seconds)


def upstream_error(exc: BaseException) -> None:
    code = getattr(exc, "code", None) or getattr(exc, "http_status", None) or type(exc).__name__
    _tallies.add(f"{PREFIX}:upstream_errors", str(code))


def db_statement(role: str) -> None:
    """One SQL statement sent by a process of ``role`` (reelmill_db_statements_total; the benchmarks divide it by
    jobs)."""
    _tallies.add(f"{PREFIX}:db_statements", role)


def delivery_outcome(outcome: str) -> None:
    _tallies.add(f"{PREFIX}:deliveries", outcome)


def read_hash(name: str) -> dict[str, float]:
    raw = get_redis().hgetall(f"{PREFIX}:{name}")
    return {k.decode(): float(v) for k, v in raw.items()}


def read_steps() -> dict[str, dict[str, float]]:
    redis = get_redis()
    stages = sorted(s.decode() for s in redis.smembers(f"{PREFIX}:stages") if s)
    return {stage: {k.decode(): float(v) for k, v in redis.hgetall(step_key(stage)).items()} for stage in stages}

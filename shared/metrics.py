"""Service metrics, counted in Redis so that every worker's figures add up in one place.

Workers call the recorders below; they only add to in-process tallies (no I/O on the hot path), and a background
thread flushes the tallies to Redis once a second in one pipeline. A metrics hiccup never fails a job. The API's
`/metrics` reads the figures back, with gauges taken from the database and the queues (services/api/metrics.py).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter

from shared.redis_conn import get_redis

log = logging.getLogger(__name__)

PREFIX = "reelmill:metrics"
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
FLUSH_EVERY_S = 1.0


class _Tallies:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()  # (hash key, field) -> increment
        self._sums: Counter[tuple[str, str]] = Counter()
        self._thread: threading.Thread | None = None

    def add(self, key: str, field: str, by: int = 1) -> None:
        with self._lock:
            self._counts[(key, field)] += by
            self._start()

    def add_float(self, key: str, field: str, by: float) -> None:
        with self._lock:
            self._sums[(key, field)] += by
            self._start()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="metrics-flush", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_EVERY_S):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, sums = self._counts, self._sums
            self._counts, self._sums = Counter(), Counter()
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

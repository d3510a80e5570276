"""The metrics tallies: recorded from many threads at once without a lock, every increment reaches Redis."""

from __future__ import annotations

import threading
import uuid

import redis

from shared import metrics

THREADS, EACH = 8, 5_000


def test_every_increment_from_many_threads_reaches_redis(redis_url: str) -> None:
    tallies = metrics._Tallies()  # its own: the flush thread of this one races the threads below, as in a worker
    key = f"{metrics.PREFIX}:test:{uuid.uuid4().hex[:8]}"
    go = threading.Barrier(THREADS)

    def record() -> None:
        go.wait()
        for _ in range(EACH):
            tallies.add(key, "count")
            tallies.add_float(key, "sum", 0.5)

    workers = [threading.Thread(target=record) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    tallies.flush()
    client = redis.Redis.from_url(redis_url)
    try:
        assert int(client.hget(key, "count") or 0) == THREADS * EACH
        assert float(client.hget(key, "sum") or 0) == THREADS * EACH * 0.5
        tallies.flush()  # nothing left: a second flush adds nothing
        assert int(client.hget(key, "count") or 0) == THREADS * EACH
    finally:
        client.delete(key)

"""One Redis client per process for reelmill's own keys (metrics, readiness), on the broker's server."""

from __future__ import annotations

import os
import threading

import redis

from shared.settings import get_settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_lock = threading.Lock()
_client: tuple[int, redis.Redis] | None = None


def redis_url() -> str:
    return get_settings().effective_redis_url or DEFAULT_REDIS_URL


def get_redis() -> redis.Redis:
    global _client
    pid = os.getpid()
    if _client is None or _client[0] != pid:
        with _lock:
            if _client is None or _client[0] != pid:
                conn = redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=3)
                _client = (pid, conn)
    return _client[1]

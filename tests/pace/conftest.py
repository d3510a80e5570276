"""Fixtures for the pace tests: a client on the suite's Redis with a fresh credential per test, and private
Redis servers for the tests that flush or stop theirs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from shared.pace import Limiter, PaceConfig
from tests.pace.helpers import PrivateRedis
from tests.utils.net import free_port


@pytest.fixture()
def client(redis_url: str) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(redis_url)
    yield made
    made.close()


@pytest.fixture()
def credential() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def limiter_for(client: redis.Redis, credential: str) -> Callable[..., Limiter]:
    """`limiter_for(max_streams=2, rebuild=...)`: a limiter on this test's credential (empty rebuild by default)."""

    def make(rebuild: Any = lambda cred: {}, **config: Any) -> Limiter:
        return Limiter(client, credential, PaceConfig(**config), rebuild=rebuild)

    return make


@pytest.fixture()
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port()).start()
    try:
        yield server
    finally:
        for made in server.clients:
            made.close()
        server.stop()

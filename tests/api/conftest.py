"""Fixtures for the API's own tests: a real `reelmill api` process on the suite's database and Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.api.served import ServedApi
from tests.utils import stack


@pytest.fixture(scope="module")
def served(database: str, redis_url: str, sim_url: str) -> Iterator[ServedApi]:
    """`reelmill api` on a free port, small limits so that tests can cross them cheaply."""
    env = {
        **os.environ,
        "REELMILL_MAX_JSON_BYTES": "262144",
        "REELMILL_MAX_MULTIPART_BYTES": "1048576",
        "REELMILL_BATCH_MAX_BYTES": "20000",
        "REELMILL_PREFER_WAIT_MAX_S": "2",
    }
    api = ServedApi(env).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture()
def key(database: str) -> str:
    return stack.new_tenant("api").key

"""A backing service that is down is the API's 503 with Retry-After (try again), never a 500 (our bug), and its
driver's message (which can name hosts and users) stays out of the answer."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.api.served import ServedApi
from tests.utils.net import free_port


@pytest.fixture(scope="module")
def stranded() -> Iterator[ServedApi]:
    """`reelmill api` whose database and Redis are on loopback ports where nothing listens."""
    dead_db, dead_redis = free_port(), free_port()
    env = {
        **os.environ,
        "REELMILL_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{dead_db}/nowhere",
        "REELMILL_REDIS_URL": f"redis://127.0.0.1:{dead_redis}/0",
    }
    api = ServedApi(env).start()
    try:
        yield api
    finally:
        api.stop()


def _assert_unavailable(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["retry-after"]) > 0
    error = resp.json()["error"]
    assert error["code"] == "unavailable"
    assert "nowhere" not in resp.text and "postgres@" not in resp.text


def test_authentication_against_a_database_that_is_down_answers_503(stranded: ServedApi) -> None:
    headers = {"Authorization": "Bearer rm_not_checkable_now"}
    with httpx.Client(base_url=stranded.url, timeout=60) as http:
        _assert_unavailable(http.get("/v1/jobs", headers=headers))
        _assert_unavailable(http.post("/v1/jobs", headers=headers, json={"prompt": "a fox at dusk"}))
        assert http.get("/healthz").status_code == 200  # alive, just not ready
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok" and ready.json()["checks"]["redis"] != "ok"

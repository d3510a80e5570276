"""Fixtures shared by every test: the simulator as a real server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.utils import stack

stack.prepare_env()  # before any reelmill module reads its settings

pytest_plugins = ["tests.utils.fixtures"]  # the stack's fixtures: database, redis_url, services, api, tenant, ...
from tests.utils.heavy import one_at_a_time  # noqa: E402
from tests.utils.net import wait_http  # noqa: E402
from tests.utils.sim_admin import SimAdmin  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outside pytest-timeout's wrapper: the wait is not timed
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if item.get_closest_marker("heavy") is None:
        yield
        return
    with one_at_a_time():
        yield


@pytest.fixture(scope="session")
def sim_url() -> Iterator[str]:
    """Start `reelmill sim` as its own process on a free loopback port, for the whole session."""
    port = stack.SIM_PORT
    env = {**os.environ, "REELMILL_SIM_TIME_SCALE": "0.01"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "sim", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_sim/health", proc=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def sim(sim_url: str) -> Iterator[SimAdmin]:
    """The simulator, reset to its start config before the test."""
    admin = SimAdmin(sim_url)
    admin.reset()
    yield admin
    admin.http.close()

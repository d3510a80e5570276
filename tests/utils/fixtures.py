"""Pytest fixtures for the full stack (imported by tests/conftest.py). Session-scoped servers, fresh tenants."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.utils import stack


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    proc = stack.start_redis(stack.REDIS_PORT)
    try:
        yield f"redis://127.0.0.1:{stack.REDIS_PORT}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, migrated to head, dropped at the end."""
    from shared.db import reset_engine

    stack.create_database()
    try:
        stack.migrate()
        yield stack.test_env()["REELMILL_DATABASE_URL"]
    finally:
        reset_engine()
        stack.drop_database()


@pytest.fixture(scope="session")
def services(database: str, redis_url: str, sim_url: str) -> Iterator[dict[str, stack.Proc]]:
    """One worker on every queue, and beat (the sweeper), for the whole session, supervised: a role that exits is
    started again, as `reelmill up`, compose's restart policy or Kubernetes would (`stack.Supervisor`)."""
    procs = {"worker": stack.start_worker("worker"), "beat": stack.start_beat()}
    supervisor = stack.Supervisor(procs)
    supervisor.start()
    try:
        yield procs
    finally:
        supervisor.stop()
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="session")
def api(database: str, redis_url: str):
    from fastapi.testclient import TestClient

    from services.api.app import create_app

    with TestClient(create_app()) as client:
        yield client


@pytest.fixture()
def tenant(database: str) -> stack.Tenant:
    return stack.new_tenant()


@pytest.fixture()
def stack_ready(services, api, sim):
    """Everything running and the simulator reset: what most pipeline tests ask for."""
    from shared.domain.credit_admission import forget_balance

    sim.configure(anonymous_credits=1_000_000)  # pipeline tests spend freely; credit tests set their own balance
    forget_balance()  # the simulator's balance was reset with it
    return api


@pytest.fixture()
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`settings_env(REELMILL_X="v", ...)` sets settings for one test; the cached settings object follows the
    environment in and out of the test."""
    from shared.settings import get_settings

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()

"""Fixtures for the NemoVideo client's tests: clients bound to the simulator or to a scripted server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.nemo.client import NemoClient
from shared.nemo.tokens import AnonymousTokenProvider, StaticTokenProvider
from tests.nemo.scripted_server import ScriptedServer
from tests.utils.sim_admin import SimAdmin

TEST_TOKEN = "nmv_usr_registered_test_token"


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture()
def client(sim: SimAdmin) -> Iterator[NemoClient]:
    """A client with a registered token (like a configured NEMO_TOKEN), 1,000 credits."""
    sim.add_token(TEST_TOKEN, credits=1000, user_id="usr_test")
    with NemoClient(sim.base_url, StaticTokenProvider(TEST_TOKEN), timeout_s=10.0) as c:
        yield c


@pytest.fixture()
def anon_client(sim: SimAdmin) -> Iterator[NemoClient]:
    """A client whose provider mints one anonymous token through the client itself."""
    with NemoClient(sim.base_url, timeout_s=10.0) as c:
        c.tokens = AnonymousTokenProvider(c.mint_anonymous_token, "test-client-1")
        yield c

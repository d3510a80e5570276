"""Fixtures of the simulator tests: an upstream caller with a fresh anonymous token and session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin


@pytest.fixture()
def up(sim: SimAdmin) -> Iterator[Upstream]:
    """A caller holding a fresh anonymous token (the simulator was just reset)."""
    caller = Upstream(sim.base_url)
    caller.mint()
    yield caller
    caller.close()


@pytest.fixture()
def sid(up: Upstream) -> str:
    return up.new_session()

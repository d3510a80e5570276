"""Fixtures of the proving ground: the shared stack, with the simulator reset and reelmill's credential known to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.utils.proving import keep_credential_known, submit, wait_quiet
from tests.utils.sim_admin import SimAdmin
from tests.utils.stack import wait_job

# A render that is done before its first poll (0.01 s at the tests' time scale; the first poll comes after
# REELMILL_RENDER_POLL_S), so every job polls exactly once unless a fault says otherwise.
QUICK_RENDER = {"render_seconds": 1.0}


@pytest.fixture(scope="module")
def warm(services, api, sim_url, database):
    """One job through the stack before a module counts calls, so every process holds the current credential."""
    from tests.utils import stack

    wait_quiet()
    admin = SimAdmin(sim_url)
    admin.reset()
    keep_credential_known(admin)
    tenant = stack.new_tenant("warm")
    job = submit(api, tenant)
    assert wait_job(api, tenant, job["id"], timeout=90)["status"] == "succeeded"
    admin.http.close()


@pytest.fixture()
def proving(services, api, warm, sim_url: str) -> Iterator[SimAdmin]:
    """The stack quiet (no job of an earlier test still calling the upstream), then the simulator reset, with
    reelmill's credential still valid in it, credits to spare and silent streams off."""
    from shared.domain.credit_admission import forget_balance

    wait_quiet()
    sim = SimAdmin(sim_url)
    sim.reset()
    keep_credential_known(sim)
    sim.configure(silent_share=0.0, anonymous_credits=1_000_000, **QUICK_RENDER)
    forget_balance()
    yield sim
    sim.http.close()

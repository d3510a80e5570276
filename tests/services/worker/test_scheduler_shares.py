"""The scheduler honours a tenant's weight and cap as changed on the running system (`reelmill tenants`), at its
next round, without a restart: it reads them from the database every round (services/worker/scheduler.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func
from sqlmodel import select

from services.worker import scheduler
from shared.db import session_scope
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row
from shared.domain.tenant_shares import set_max_in_flight, set_weight
from shared.domain.tenants import get_or_create_tenant
from shared.ids import new_id
from shared.tables import Job, JobStatus, Stage
from tests.batches.helpers import admit_now, end_open_jobs, recording, scheduler_held


@pytest.fixture()
def tenants(database: str, redis_url: str, settings_env) -> Iterator[tuple[str, str]]:
    settings_env(REELMILL_UPSTREAM_MAX_IN_FLIGHT="100000")  # the window never binds: only the tenant's cap does
    names = (f"shares-a-{new_id('t')[-8:]}", f"shares-b-{new_id('t')[-8:]}")
    with scheduler_held(), recording():  # nobody else admits; nothing reaches Celery
        yield names
    for name in names:
        end_open_jobs(name)


def _queue(name: str, count: int) -> str:
    with session_scope() as session:
        tenant_id = get_or_create_tenant(session, name).id
        for _ in range(count):
            session.add(new_job_row(tenant_id, JobSpec(prompt="x")))
    return tenant_id


def _started(tenant_id: str) -> int:
    with session_scope() as session:
        started = (Job.tenant_id == tenant_id) & (Job.stage != Stage.queued) & (Job.status == JobStatus.queued)
        return int(session.exec(select(func.count()).select_from(Job).where(started)).one())


def test_a_changed_cap_applies_at_the_next_round(tenants: tuple[str, str]) -> None:
    a_name, b_name = tenants
    a, b = _queue(a_name, 8), _queue(b_name, 3)
    with session_scope() as session:
        set_max_in_flight(session, a_name, 2)
    admit_now()
    assert (_started(a), _started(b)) == (2, 3), "a held to its cap; b, without one, starts all"
    admit_now()
    assert _started(a) == 2, "the cap holds round after round"
    with session_scope() as session:
        set_max_in_flight(session, a_name, "5")
    admit_now()
    assert _started(a) == 5, "a raised cap: three more"
    with session_scope() as session:
        set_max_in_flight(session, a_name, "none")
    admit_now()
    assert _started(a) == 8, "no cap: the rest"


def test_a_changed_weight_is_read_at_the_next_round(tenants: tuple[str, str]) -> None:
    a_name, b_name = tenants
    a, b = _queue(a_name, 1), _queue(b_name, 1)
    with session_scope() as session:
        assert scheduler._weights(session, [a, b]) == {a: (1, None), b: (1, None)}
    with session_scope() as session:
        set_weight(session, a_name, 3)
        set_max_in_flight(session, b_name, 7)
    with session_scope() as session:
        limits = scheduler._weights(session, [a, b])
    assert limits == {a: (3, None), b: (1, 7)}
    # what the round does with them: a window of 8 shared 3:1 between two backlogged tenants
    plan = scheduler._admission_plan(8, {}, {a: 100, b: 100}, limits)
    assert plan == {a: 6, b: 2}

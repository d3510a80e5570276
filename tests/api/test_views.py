"""What one tenant may see: its own reservations (the shared balance only behind a setting), per-job event ids
(never the platform's global sequence), cached `/metrics`, and redelivery within its rate limit."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlmodel import select

from shared.db import get_engine, session_scope
from shared.domain.transitions import job_event
from shared.redis_conn import get_redis
from shared.tables import Delivery, Job
from shared.webhooks.deliveries import WINDOW_S
from tests.api.helpers import cancel_open, hold, no_dispatch  # noqa: F401
from tests.batches.helpers import scheduler_held
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture()
def two_tenants(api, sim) -> Iterator[tuple[stack.Tenant, stack.Tenant]]:
    mine, theirs = stack.new_tenant("mine"), stack.new_tenant("theirs")
    stack.give_credits(api, mine, sim, 1_000_000)
    yield mine, theirs
    cancel_open(mine.name, theirs.name)


def create(api, tenant, body: dict) -> str:
    resp = api.post("/v1/jobs", json=body, headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    hold(resp.json()["id"])
    return resp.json()["id"]


def test_a_tenant_sees_its_own_reservations_and_no_balance(api, two_tenants, settings_env, redis_url) -> None:
    mine, theirs = two_tenants
    with scheduler_held():  # a session-wide worker's scheduler must not start the jobs while the test reads them
        _reservations_and_balance(api, mine, theirs, settings_env)


def _reservations_and_balance(api, mine, theirs, settings_env) -> None:
    create(api, mine, {"steps": [{"text": "a"}, {"text": "b"}]})
    create(api, theirs, {"prompt": "c"})
    view = api.get("/v1/credits", headers=mine.headers).json()
    assert view == {"reserved": 20, "cost_estimate": view["cost_estimate"], "balance": None}
    assert api.get("/v1/credits", headers=theirs.headers).json()["reserved"] == 10
    settings_env(REELMILL_CREDITS_SHOW_BALANCE="true")
    shown = api.get("/v1/credits", headers=mine.headers).json()
    assert shown["reserved"] == 20
    assert shown["balance"]["available"] == 1_000_000 and shown["balance"]["reserved_all"] >= 30


def frames(text: str) -> list[tuple[int, str]]:
    return [(int(i), t) for i, t in re.findall(r"^id: (\d+)\nevent: (\S+)$", text, re.M)]


def test_event_ids_are_the_jobs_own(api, two_tenants) -> None:
    mine, theirs = two_tenants
    job_id, noise_id = create(api, mine, {"prompt": "a"}), create(api, theirs, {"prompt": "b"})
    with session_scope() as session:
        job, noise = (session.exec(select(Job).where(Job.id == i)).one() for i in (job_id, noise_id))
        for n in range(3):
            job_event(session, noise, "job.stage", {"n": n})  # another tenant's events in between
            job_event(session, job, "job.stage", {"n": n})
    assert api.post(f"/v1/jobs/{job_id}/cancel", headers=mine.headers).json()["status"] == "canceled"
    whole = api.get(f"/v1/jobs/{job_id}/events", headers=mine.headers)
    assert whole.status_code == 200
    got = frames(whole.text)
    assert [i for i, _ in got] == list(range(1, len(got) + 1)) and len(got) >= 4
    assert got[-1][1] == "job.canceled"
    resumed = api.get(f"/v1/jobs/{job_id}/events", headers={**mine.headers, "Last-Event-ID": "2"})
    assert frames(resumed.text) == got[2:]
    assert api.get(f"/v1/jobs/{job_id}/events", headers={**mine.headers, "Last-Event-ID": str(len(got))}).text == ""


def group_bys() -> Iterator[list[str]]:
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:
        if "GROUP BY" in statement.upper():
            seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture()
def counted() -> Iterator[list[str]]:
    yield from group_bys()


def test_metrics_do_not_query_the_database_on_every_scrape(api, counted, settings_env) -> None:
    from services.api.metrics import FRESH_KEY, LAST_KEY

    settings_env(REELMILL_METRICS_REFRESH_S="60")
    get_redis().delete(FRESH_KEY, LAST_KEY)
    first = api.get("/metrics")
    assert first.status_code == 200 and "reelmill_jobs{" in first.text
    assert len(counted) == 4  # jobs, batches, deliveries by status; tenants with jobs waiting
    for _ in range(20):
        assert api.get("/metrics").text.count("reelmill_jobs{") >= 1
    assert len(counted) == 4, "a scrape within metrics_refresh_s must not query the database"
    get_redis().delete(FRESH_KEY)  # as when metrics_refresh_s has passed
    api.get("/metrics")
    assert len(counted) == 8


def test_redelivery_is_rate_limited_per_tenant(api, two_tenants, settings_env) -> None:
    mine, theirs = two_tenants
    settings_env(REELMILL_REDELIVER_PER_MINUTE="3")
    job_id = create(api, mine, {"prompt": "a", "webhook": "http://127.0.0.1:9/hook"})
    with session_scope() as session:
        job_event(session, session.exec(select(Job).where(Job.id == job_id)).one(), "job.started")
    with session_scope() as session:
        delivery = session.exec(select(Delivery).where(Delivery.job_id == job_id)).one()
        delivery.status = "failed"
        session.add(delivery)
        delivery_id = delivery.id
    for _ in range(2):  # a minute boundary between the calls resets the count: then the sequence runs again
        window = int(time.time() // WINDOW_S)
        answers = [api.post(f"/v1/deliveries/{delivery_id}/redeliver", headers=mine.headers) for _ in range(4)]
        if int(time.time() // WINDOW_S) == window:
            break
        get_redis().delete(*get_redis().keys("reelmill:redeliver:*"))
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]
    limited = answers[3]
    assert limited.status_code == 429
    assert (
        limited.json()["error"]["code"] == "rate_limited"
        and "3 redeliveries a minute" in limited.json()["error"]["message"]
    )
    assert 1 <= int(limited.headers["Retry-After"]) <= WINDOW_S + 1
    # another tenant's budget is its own (its request is refused for its own reason: not its delivery)
    assert api.post(f"/v1/deliveries/{delivery_id}/redeliver", headers=theirs.headers).status_code == 404
    with session_scope() as session:
        for row in session.exec(select(Delivery).where(Delivery.job_id == job_id)):
            row.status = "failed"  # nothing for the session's sweeper to send to port 9
            session.add(row)

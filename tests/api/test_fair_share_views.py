"""What operators and clients see of fair shares (issue 14): a waiting job's `queue_position` on the API, and the
pace and per-tenant queue figures on `/metrics` (names and values, tenants with nothing waiting left out)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from shared.db import session_scope
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row
from shared.domain.tenants import get_or_create_tenant
from shared.ids import new_id
from shared.pace import Limiter, PaceConfig
from shared.pace.keys import REGISTRY, Keys
from shared.redis_conn import get_redis
from shared.settings import get_settings
from shared.tables import Job, JobStatus, Stage
from shared.timeutil import utcnow
from tests.api.helpers import cancel_open, hold, no_dispatch  # noqa: F401
from tests.batches.helpers import scheduler_held
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture()
def waiting_tenant(api, sim) -> Iterator[stack.Tenant]:
    made = stack.new_tenant("qpos")
    stack.give_credits(api, made, sim, 1_000_000)
    with scheduler_held():  # its jobs stay waiting while the test looks
        yield made
    cancel_open(made.name)


def test_a_waiting_job_shows_its_place_and_loses_it_once_started(api, waiting_tenant) -> None:
    headers = waiting_tenant.headers

    def post(body: dict) -> dict:
        made = api.post("/v1/jobs", json=body, headers=headers)
        assert made.status_code == 201, made.text
        hold(made.json()["id"])
        return made.json()

    normal = post({"prompt": "a lighthouse"})
    assert normal["queue_position"] == 1, "the answer to the POST says it"
    urgent = post({"prompt": "a harbour", "priority": "high"})
    assert urgent["queue_position"] == 1, "high goes first"
    assert api.get(f"/v1/jobs/{normal['id']}", headers=headers).json()["queue_position"] == 2
    listed = api.get("/v1/jobs", headers=headers).json()["data"]
    assert {j["id"]: j["queue_position"] for j in listed} == {urgent["id"]: 1, normal["id"]: 2}

    with session_scope() as session:
        session.exec(  # type: ignore[call-overload]
            update(Job).where(Job.id == urgent["id"]).values(stage=Stage.credential, status=JobStatus.starting)
        )
    assert api.get(f"/v1/jobs/{urgent['id']}", headers=headers).json()["queue_position"] is None
    assert api.get(f"/v1/jobs/{normal['id']}", headers=headers).json()["queue_position"] == 1


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture()
def credential(redis_url: str) -> Iterator[str]:
    name = f"metrics-{new_id('c')[-8:]}"
    yield name
    client = get_redis()
    client.delete(*client.keys(f"{Keys(name).prefix}:*") or ["-"])
    client.srem(REGISTRY, name)


def test_metrics_show_each_credentials_pace_and_each_waiting_tenants_queue(api, credential, settings_env) -> None:
    from services.api.metrics import FRESH_KEY

    # the API reports against the configured limits: the same for the limiter here and for /metrics
    settings_env(REELMILL_UPSTREAM_MAX_STREAMS="4", REELMILL_UPSTREAM_RPS="0.5")
    config = PaceConfig.from_settings(get_settings())
    pace = Limiter(get_redis(), credential, config, rebuild=lambda _: {})
    assert pace.acquire("streams", "job_one", ttl_s=60)
    assert pace.acquire("streams", "job_two", ttl_s=60)
    assert pace.take("call") == 0.0
    assert pace.take("call") > 0, "a second call within two seconds waits: a throttle wait"
    pace.penalize("stream", 30)  # a 429: the class pauses and its rate halves

    busy, idle = f"busy-{new_id('t')[-8:]}", f"idle-{new_id('t')[-8:]}"
    with session_scope() as session:
        busy_id, idle_id = get_or_create_tenant(session, busy).id, get_or_create_tenant(session, idle).id
        for age_s in (600, 60, 5):
            session.add(new_job_row(busy_id, JobSpec(prompt="x"), created_at=utcnow() - timedelta(seconds=age_s)))
        session.add(new_job_row(idle_id, JobSpec(prompt="x"), stage=Stage.message, status=JobStatus.processing))
    try:
        with scheduler_held():
            get_redis().delete(FRESH_KEY)  # figures as of now, not the last scrape's
            scraped = api.get("/metrics")
    finally:
        cancel_open(busy, idle)
    assert scraped.status_code == 200
    got = samples(scraped.text)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    who = {"credential": credential}
    assert value("reelmill_upstream_in_flight", **who, resource="streams") == 2
    assert value("reelmill_upstream_in_flight", **who, resource="renders") == 0
    assert value("reelmill_upstream_cap", **who, resource="streams") == 2, "the 429 halved the stream cap"
    assert value("reelmill_upstream_max_cap", **who, resource="streams") == 4
    assert value("reelmill_upstream_rate", **who, **{"class": "stream"}) == 0.25, "and the stream rate"
    assert value("reelmill_upstream_rate", **who, **{"class": "call"}) == 0.5
    assert value("reelmill_upstream_max_rate", **who) == 0.5
    assert value("reelmill_upstream_rate_limited_total", **who, **{"class": "stream"}) == 1
    assert value("reelmill_upstream_rate_limited_total", **who, **{"class": "call"}) == 0
    assert value("reelmill_upstream_throttled_total", **who, **{"class": "call"}) == 1
    assert 25 < value("reelmill_upstream_pause_seconds", **who, **{"class": "stream"}) <= 30
    assert value("reelmill_upstream_pause_seconds", **who, **{"class": "call"}) == 0

    assert value("reelmill_tenant_queued_jobs", tenant=busy) == 3
    assert 600 <= value("reelmill_tenant_oldest_queued_seconds", tenant=busy) < 900
    tenants = {dict(labels).get("tenant") for name, labels in got if name.startswith("reelmill_tenant_")}
    assert idle not in tenants, "a tenant with nothing waiting is left out"

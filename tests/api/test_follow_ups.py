"""Follow-up messages are held to the job's limits (assets per message, turns per job, credit admission for every
kind of message), and a job's long sub-lists come a page at a time: its revisions, its deliveries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from shared.db import session_scope
from shared.domain.transitions import job_event
from shared.tables import Delivery, Job
from tests.api.helpers import cancel_open, forbid_name_lookups, hold, no_dispatch  # noqa: F401
from tests.utils import stack

pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture()
def job(api, tenant, sim) -> Iterator[dict]:
    resp = api.post(
        "/v1/jobs", json={"prompt": "a fox at dusk", "webhook": "http://127.0.0.1:9/hook"}, headers=tenant.headers
    )
    assert resp.status_code == 201, resp.text
    hold(resp.json()["id"])
    yield resp.json()
    cancel_open(tenant.name)


def message(api, tenant, job_id: str, **body):
    return api.post(f"/v1/jobs/{job_id}/messages", json=body, headers=tenant.headers)


def test_a_message_has_the_jobs_asset_limit(api, tenant, job) -> None:
    urls = [f"https://cdn.example.test/{i}.jpg" for i in range(21)]
    resp = message(api, tenant, job["id"], text="use these", assets=urls)
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "assets" and "at most 20 assets" in resp.json()["error"]["message"]
    assert message(api, tenant, job["id"], text="use these", assets=urls[:20]).status_code == 202


def test_a_message_asset_url_is_checked_without_dns(api, tenant, job, settings_env, monkeypatch) -> None:
    settings_env(REELMILL_OUTBOUND_ALLOW_PRIVATE="false")
    asked = forbid_name_lookups(monkeypatch)
    bad = message(
        api, tenant, job["id"], text="add this", assets=["https://ok.example.test/a.jpg", "https://10.1.2.3/b.jpg"]
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "assets[1]"
    assert "private" in bad.json()["error"]["message"]
    assert message(api, tenant, job["id"], text="add this", assets=["https://nowhere.invalid/a.jpg"]).status_code == 202
    assert asked == []


def test_a_job_has_a_turn_limit(api, tenant, job, settings_env) -> None:
    settings_env(REELMILL_MAX_TURNS_PER_JOB="3")
    assert message(api, tenant, job["id"], text="make it longer").status_code == 202
    assert message(api, tenant, job["id"], text="add music").status_code == 202
    resp = message(api, tenant, job["id"], text="and a title")
    assert resp.status_code == 409
    assert resp.json()["error"]["field"] == "job" and "limit of 3 turns" in resp.json()["error"]["message"]
    steps = [{"text": f"clip {i}"} for i in range(4)]
    too_many = api.post("/v1/jobs", json={"steps": steps}, headers=tenant.headers)
    assert too_many.status_code == 422 and "at most 3 steps" in too_many.json()["error"]["message"]


def test_every_kind_of_message_is_admitted(api, tenant, job, sim) -> None:
    """With the balance spent by work already accepted, a message is refused whatever it asks for, including the
    actions that cost nothing themselves (status, credits, export)."""
    stack.give_credits(api, tenant, sim, 5)  # the job's own pending turn reserves 10
    for text in ("add a title card", "status", "credits", "export"):
        resp = message(api, tenant, job["id"], text=text)
        assert resp.status_code == 402, (text, resp.text)
        assert resp.json()["error"]["code"] == "insufficient_credits"
    stack.give_credits(api, tenant, sim, 10)  # nothing left over, nothing short: a free action goes through
    assert message(api, tenant, job["id"], text="status").status_code == 202
    assert message(api, tenant, job["id"], text="add a title card").status_code == 402


def test_revisions_come_a_page_at_a_time(api, tenant, job, settings_env, sim) -> None:
    settings_env(REELMILL_MAX_TURNS_PER_JOB="40")
    stack.give_credits(api, tenant, sim, 1_000_000)
    for i in range(25):
        assert message(api, tenant, job["id"], text=f"change number {i}").status_code == 202
    view = api.get(f"/v1/jobs/{job['id']}", headers=tenant.headers).json()
    assert view["revisions_total"] == 26
    assert [r["index"] for r in view["revisions"]] == list(range(6, 26))  # the latest 20
    assert view["urls"]["revisions"].endswith(f"/v1/jobs/{job['id']}/revisions")
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/jobs/{job['id']}/revisions", params=params, headers=tenant.headers).json()
        seen += [r["index"] for r in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if not cursor:
            break
    assert seen == list(range(26))
    assert (
        api.get(f"/v1/jobs/{job['id']}/revisions", params={"cursor": "bm9wZQ"}, headers=tenant.headers).status_code
        == 422
    )
    other = stack.new_tenant("other")
    assert api.get(f"/v1/jobs/{job['id']}/revisions", headers=other.headers).status_code == 404


def test_deliveries_come_a_page_at_a_time(api, tenant, job) -> None:
    with session_scope() as session:
        row = session.exec(select(Job).where(Job.id == job["id"])).one()
        row.status, row.stage = "canceled", "done"  # ended: the session's scheduler will not start it meanwhile
        session.add(row)
        before = len(session.exec(select(Delivery).where(Delivery.job_id == job["id"])).all())
        for _ in range(5):
            job_event(session, row, "job.started")
    with session_scope() as session:
        made = sorted(d.id for d in session.exec(select(Delivery).where(Delivery.job_id == job["id"])))
        for delivery in session.exec(select(Delivery).where(Delivery.job_id == job["id"])):
            delivery.status = "failed"  # nothing for the session's sweeper to send to port 9
            session.add(delivery)
    assert len(made) == before + 5 and len(made) >= 5
    first = api.get(f"/v1/jobs/{job['id']}/deliveries", params={"limit": 2}, headers=tenant.headers).json()
    assert [d["id"] for d in first["data"]] == made[:2] and first["has_more"]
    rest = api.get(
        f"/v1/jobs/{job['id']}/deliveries", params={"limit": 5, "cursor": first["next_cursor"]}, headers=tenant.headers
    ).json()
    assert [d["id"] for d in rest["data"]] == made[2:] and rest["next_cursor"] is None and not rest["has_more"]
    bad = api.get(f"/v1/jobs/{job['id']}/deliveries", params={"cursor": "x"}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"

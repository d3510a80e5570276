"""Deliveries made by the real worker process (the session's `services`), to a real receiver on loopback that
verifies every request with the `standardwebhooks` package. Events are written through the domain, as the
pipeline writes them; the session worker runs the retry schedule scaled by 0.001."""

from __future__ import annotations

import time

from sqlmodel import select

from shared.db import session_scope
from shared.domain.events import emit
from shared.tables import Delivery
from tests.utils.waiting import wait_until
from tests.webhooks.helpers import Hooked, deliveries_of, emit_job_event, still_job, wait_final
from tests.webhooks.receiver import Receiver, Reply


def test_event_arrives_signed_with_the_job_object(services, api, hooked: Hooked) -> None:
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/hook"))
    emit_job_event(job_id, "job.started")
    [row] = wait_final(job_id, 1)
    assert row.status == "succeeded" and row.attempts == 1 and row.last_status_code == 200
    [got] = hooked.rx.received("/hook")
    assert got.verified_with == [0]
    assert got.payload["type"] == "job.started"
    assert set(got.payload) == {"type", "timestamp", "data"}
    job = api.get(f"/v1/jobs/{job_id}", headers=hooked.tenant.headers).json()
    assert got.payload["data"] == job
    assert got.headers["content-type"] == "application/json"
    assert got.webhook_id.startswith("msg_")


def test_filter_picks_the_events(services, api, hooked: Hooked) -> None:
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/only-completed"), ["completed"])
    for type in ("job.started", "job.progress", "job.succeeded"):
        emit_job_event(job_id, type)
    [row] = wait_final(job_id, 1)
    assert row.status == "succeeded"
    assert [r.payload["type"] for r in hooked.rx.received()] == ["job.succeeded"]


def test_receiver_down_then_up_gets_everything(services, api, hooked: Hooked) -> None:
    down = Receiver(secrets=[hooked.secret])  # its port is reserved, nothing listens yet
    job_id = still_job(hooked.tenant_id, down.url("/later"), ["start", "progress", "completed"])
    for type in ("job.started", "job.progress", "job.succeeded"):
        emit_job_event(job_id, type)
    wait_until(lambda: len(deliveries_of(job_id)) == 3 and all(d.attempts >= 3 for d in deliveries_of(job_id)))
    first = api.get(f"/v1/jobs/{job_id}/deliveries", headers=hooked.tenant.headers).json()["data"]
    failed = [a for d in first for a in d["attempts"]]
    assert failed and all(a["status_code"] is None and a["error"] for a in failed)
    down.start()
    try:
        rows = wait_final(job_id, 3, timeout=30)
        assert {r.status for r in rows} == {"succeeded"}
        got = down.received("/later")
        assert sorted(r.payload["type"] for r in got) == ["job.progress", "job.started", "job.succeeded"]
        assert all(r.verified_with == [0] for r in got)
        assert len({r.webhook_id for r in got}) == 3
    finally:
        down.stop()


def test_500_then_200_retries_with_the_same_message(services, api, hooked: Hooked) -> None:
    hooked.rx.script("/flaky", Reply(500, body="boom"), Reply(500, body="boom again"))
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/flaky"))
    emit_job_event(job_id, "job.succeeded")
    [row] = wait_final(job_id, 1)
    assert row.status == "succeeded" and row.attempts == 3
    got = hooked.rx.received("/flaky")
    assert len(got) == 3
    assert len({r.webhook_id for r in got}) == 1 and len({r.body for r in got}) == 1
    assert all(r.verified_with == [0] for r in got)
    [view] = api.get(f"/v1/jobs/{job_id}/deliveries", headers=hooked.tenant.headers).json()["data"]
    assert [a["status_code"] for a in view["attempts"]] == [500, 500, 200]
    assert view["attempts"][0]["response_excerpt"] == "boom"
    assert view["webhook_id"] == got[0].webhook_id and view["status"] == "succeeded"
    assert all(a["latency_ms"] >= 0 and a["attempted_at"] for a in view["attempts"])


def test_retry_after_is_honoured(services, api, hooked: Hooked) -> None:
    hooked.rx.script("/busy", Reply(503, headers={"Retry-After": "2"}))
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/busy"))
    emit_job_event(job_id, "job.started")
    wait_final(job_id, 1)
    first, second = hooked.rx.received("/busy")
    # the schedule alone would retry after ~5 ms (scaled); the receiver asked for 2 s
    assert second.at - first.at >= 1.9
    assert first.webhook_id == second.webhook_id


def test_410_stops_every_delivery_to_that_url(services, api, hooked: Hooked) -> None:
    url = hooked.rx.url("/gone")
    hooked.rx.script("/gone", Reply(500, headers={"Retry-After": "2"}), Reply(410))
    job_a = still_job(hooked.tenant_id, url)
    job_b = still_job(hooked.tenant_id, url)
    emit_job_event(job_a, "job.started")
    wait_until(lambda: deliveries_of(job_a)[0].last_status_code == 500)  # a waits 2 s for its retry
    emit_job_event(job_b, "job.started")  # b's first attempt gets the 410, which stops a's pending retry too
    [b] = wait_final(job_b, 1)
    [a] = wait_final(job_a, 1)
    assert (a.status, a.attempts, b.status, b.last_status_code) == ("gone", 1, "gone", 410)
    time.sleep(2.5)  # past a's Retry-After: its scheduled attempt finds nothing to do
    assert len(hooked.rx.received("/gone")) == 2
    emit_job_event(job_a, "job.succeeded")  # a new event to the gone URL: no delivery at all
    assert len(deliveries_of(job_a)) == 1
    # the receiver said "stop": a client's redelivery does not lift the mark, and nothing is sent
    resp = api.post(f"/v1/deliveries/{a.id}/redeliver", headers=hooked.tenant.headers)
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["field"] == "url" and "410 Gone" in resp.json()["error"]["message"]
    assert len(deliveries_of(job_a)) == 1
    emit_job_event(job_a, "job.failed")  # the URL is still gone for new events too: no delivery is even written
    assert len(deliveries_of(job_a)) == 1 and len(hooked.rx.received("/gone")) == 2


def test_redirect_is_not_followed_and_counts_as_failure(services, api, hooked: Hooked) -> None:
    moved = Reply(302, headers={"Location": hooked.rx.url("/target")}, body="")
    hooked.rx.script("/moved", moved, moved)
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/moved"))
    emit_job_event(job_id, "job.started")
    [row] = wait_final(job_id, 1)
    assert row.status == "succeeded" and row.attempts == 3
    assert hooked.rx.received("/target") == []
    [view] = api.get(f"/v1/jobs/{job_id}/deliveries", headers=hooked.tenant.headers).json()["data"]
    assert [a["status_code"] for a in view["attempts"]] == [302, 302, 200]
    assert "not followed" in view["attempts"][0]["response_excerpt"]


def test_redeliver_keeps_the_webhook_id(services, api, hooked: Hooked, tenant_b) -> None:
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/again"))
    emit_job_event(job_id, "job.succeeded")
    [row] = wait_final(job_id, 1)
    resp = api.post(f"/v1/deliveries/{row.id}/redeliver", headers=hooked.tenant.headers)
    assert resp.status_code == 202, resp.text
    fresh = resp.json()
    assert fresh["id"] != row.id and fresh["status"] == "pending" and fresh["event_type"] == "job.succeeded"
    wait_final(job_id, 2)
    first, second = hooked.rx.received("/again")
    assert first.webhook_id == second.webhook_id == fresh["webhook_id"]
    assert first.body == second.body and second.verified_with == [0]
    views = api.get(f"/v1/jobs/{job_id}/deliveries", headers=hooked.tenant.headers).json()["data"]
    assert [v["status"] for v in views] == ["succeeded", "succeeded"]
    # another tenant sees none of it
    assert api.post(f"/v1/deliveries/{row.id}/redeliver", headers=tenant_b.headers).status_code == 404
    assert api.get(f"/v1/jobs/{job_id}/deliveries", headers=tenant_b.headers).status_code == 404
    assert api.post("/v1/deliveries/dlv_nope/redeliver", headers=hooked.tenant.headers).status_code == 404


def test_batch_event_without_a_job_is_delivered(services, api, hooked: Hooked) -> None:
    with session_scope() as session:
        event = emit(
            session,
            tenant_id=hooked.tenant_id,
            type="batch.completed",
            data={"id": "bat_test", "status": "completed"},
            batch_id="bat_test",
            webhook_url=hooked.rx.url("/batch"),
        )
        msg_id = event.id

    def done() -> Delivery | None:
        with session_scope() as session:
            row = session.exec(select(Delivery).where(Delivery.event_id == msg_id)).first()
            return row if row is not None and row.status != "pending" else None

    row = wait_until(done)
    assert row.status == "succeeded" and row.job_id is None
    [got] = hooked.rx.received("/batch")
    assert got.webhook_id == msg_id and got.verified_with == [0]
    assert got.payload["type"] == "batch.completed" and got.payload["data"]["id"] == "bat_test"

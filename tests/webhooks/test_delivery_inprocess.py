"""`deliver(id)` called in this process, with settings changed for one test (timeout, schedule scale, outbound
guard) and a recording dispatcher, so no worker takes part. The receiver still verifies every request with
`standardwebhooks`."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import select

from services.worker.delivery import deliver
from shared.db import session_scope
from shared.settings import get_settings
from shared.tables import Delivery, DeliveryAttempt, Tenant
from shared.timeutil import utcnow
from tests.webhooks.helpers import Hooked, RecordingDispatcher, deliveries_of, emit_job_event, still_job
from tests.webhooks.receiver import Reply

FINAL = ("succeeded", "failed", "gone")


def drive(delivery_id: str, max_runs: int = 20) -> list[str]:
    """Run attempts as the worker would, each when it is due, until the delivery is final."""
    outcomes: list[str] = []
    for _ in range(max_runs):
        outcomes.append(deliver(delivery_id))
        row = row_of(delivery_id)
        if row.status in FINAL:
            return outcomes
        if row.next_attempt_at is not None:
            time.sleep(max(0.0, (row.next_attempt_at - utcnow()).total_seconds()))
    return outcomes


def row_of(delivery_id: str) -> Delivery:
    with session_scope() as session:
        return session.exec(select(Delivery).where(Delivery.id == delivery_id)).one()


def attempts_of(delivery_id: str) -> list[DeliveryAttempt]:
    with session_scope() as session:
        stmt = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id).order_by(DeliveryAttempt.id)
        return list(session.exec(stmt))


def one_delivery(hooked: Hooked, url: str, type: str = "job.started") -> str:
    job_id = still_job(hooked.tenant_id, url)
    emit_job_event(job_id, type)
    [row] = deliveries_of(job_id)
    return row.id


def test_slow_receiver_times_out_and_is_retried(
    hooked: Hooked, recorder: RecordingDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_timeout_s", 0.5)
    hooked.rx.script("/slow", Reply(200, delay_s=2.0))
    dlv = one_delivery(hooked, hooked.rx.url("/slow"))
    assert recorder.deliveries == [(dlv, 0.0)]  # enqueued by emit, after commit
    assert drive(dlv) == ["retry", "succeeded"]
    first, second = attempts_of(dlv)
    assert first.status_code is None and "Timeout" in (first.error or "")
    assert second.status_code == 200
    got = hooked.rx.received("/slow")
    assert len(got) == 2 and got[0].webhook_id == got[1].webhook_id
    assert all(r.verified_with == [0] for r in got)
    assert recorder.deliveries[-1][0] == dlv  # the retry was scheduled through the dispatcher


def test_schedule_runs_out_after_eight_attempts(
    hooked: Hooked, recorder: RecordingDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "webhook_schedule_scale", 0.00001)
    hooked.rx.script("/down", *[Reply(500, body="nope")] * 8)
    dlv = one_delivery(hooked, hooked.rx.url("/down"))
    assert drive(dlv) == ["retry"] * 7 + ["failed"]
    row = row_of(dlv)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("failed", 8, 500, None)
    got = hooked.rx.received("/down")
    assert len(got) == 8 and len({r.webhook_id for r in got}) == 1
    assert deliver(dlv) == "skipped"  # a late message for a finished delivery does nothing
    assert len(hooked.rx.received("/down")) == 8


def test_guard_refuses_at_delivery_time(
    hooked: Hooked, recorder: RecordingDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the jobs were accepted while private targets were allowed; by delivery time that changed (as a DNS
    # answer can): nothing may be sent, and each refusal is a recorded attempt
    by_ip = one_delivery(hooked, hooked.rx.url("/ip"))
    by_name = one_delivery(hooked, f"http://localhost:{hooked.rx.port}/name")
    by_http = one_delivery(hooked, hooked.rx.url("/http"))
    monkeypatch.setattr(get_settings(), "outbound_allow_private", False)
    assert deliver(by_ip) == "refused"
    assert deliver(by_name) == "refused"
    monkeypatch.setattr(get_settings(), "outbound_allow_private", True)
    monkeypatch.setattr(get_settings(), "outbound_allow_http", False)
    assert deliver(by_http) == "refused"
    assert hooked.rx.received() == []
    [ip_attempt], [name_attempt], [http_attempt] = attempts_of(by_ip), attempts_of(by_name), attempts_of(by_http)
    assert "loopback" in (ip_attempt.error or "") and "127.0.0.1" in (ip_attempt.error or "")
    assert "'localhost'" in (name_attempt.error or "") and "loopback" in (name_attempt.error or "")
    assert "scheme" in (http_attempt.error or "")
    assert all(a.status_code is None for a in (ip_attempt, name_attempt, http_attempt))
    assert row_of(by_ip).status == "pending"  # refused attempts follow the schedule; DNS may change back
    monkeypatch.setattr(get_settings(), "outbound_allow_http", True)
    assert drive(by_ip)[-1] == "succeeded"
    assert [r.path for r in hooked.rx.received()] == ["/ip"]


def test_two_runs_of_one_delivery_make_one_attempt(hooked: Hooked, recorder: RecordingDispatcher) -> None:
    hooked.rx.script("/once", Reply(200, delay_s=0.5))
    dlv = one_delivery(hooked, hooked.rx.url("/once"))
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait()
        outcomes.append(deliver(dlv))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["skipped", "skipped", "skipped", "succeeded"]
    assert len(hooked.rx.received("/once")) == 1
    assert row_of(dlv).attempts == 1 and len(attempts_of(dlv)) == 1


def test_an_attempt_that_cannot_be_made_still_follows_the_schedule(
    hooked: Hooked, recorder: RecordingDispatcher
) -> None:
    dlv = one_delivery(hooked, hooked.rx.url("/broken"))
    with session_scope() as session:  # a secret that is not base64: signing raises
        tenant = session.exec(select(Tenant).where(Tenant.id == hooked.tenant_id)).one()
        tenant.webhook_secret = "whsec_!!not-base64!!"
        session.add(tenant)
    assert deliver(dlv) == "retry"
    [attempt] = attempts_of(dlv)
    assert attempt.status_code is None and attempt.error == "internal error before sending (Error)"
    assert row_of(dlv).status == "pending" and hooked.rx.received() == []

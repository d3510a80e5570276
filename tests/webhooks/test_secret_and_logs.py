"""The signing secret: shown only by its endpoints, rotated with a window during which both secrets sign, never
in a log line. Plus the sweeper resending a delivery whose queue message was lost."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import pytest
from sqlmodel import select

from shared.db import session_scope
from shared.domain import dispatch
from shared.settings import get_settings
from shared.tables import Tenant
from tests.utils.stack import Proc
from tests.webhooks.helpers import Hooked, RecordingDispatcher, deliveries_of, emit_job_event, still_job, wait_final
from tests.webhooks.receiver import Reply


def test_rotation_signs_with_both_secrets_during_the_window(
    services, api, hooked: Hooked, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old = hooked.secret
    monkeypatch.setattr(get_settings(), "webhook_rotation_window_s", 3.0)
    resp = api.post("/v1/webhooks/secret/rotate", headers=hooked.tenant.headers)
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    rotated = resp.json()
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old and rotated["previous"]["secret"] == old
    expires = datetime.fromisoformat(rotated["previous"]["expires_at"].replace("Z", "+00:00"))
    assert api.get("/v1/webhooks/secret", headers=hooked.tenant.headers).json() == rotated

    hooked.rx.secrets = [old, new]
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/rot"))
    emit_job_event(job_id, "job.started")
    wait_final(job_id, 1)
    [during] = hooked.rx.received("/rot")
    assert during.verified_with == [0, 1]  # a receiver holding either secret accepts it
    assert len(during.headers["webhook-signature"].split(" ")) == 2

    time.sleep(max(0.0, expires.timestamp() - time.time()) + 0.2)
    assert api.get("/v1/webhooks/secret", headers=hooked.tenant.headers).json() == {"secret": new, "previous": None}
    emit_job_event(job_id, "job.succeeded")
    wait_final(job_id, 2)
    after = hooked.rx.received("/rot")[1]
    assert after.verified_with == [1]  # the old secret no longer verifies
    assert len(after.headers["webhook-signature"].split(" ")) == 1

    # the secret is in the secret endpoints' replies only: not in the job, its deliveries, or the API's logs
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/deliveries"):
        assert "whsec_" not in api.get(path, headers=hooked.tenant.headers).text
    assert old not in caplog.text and new not in caplog.text and "whsec_" not in caplog.text


def test_lost_queue_message_is_resent_by_the_sweeper(services, api, hooked: Hooked) -> None:
    previous = dispatch.current()
    lost = RecordingDispatcher()  # the delivery's message goes nowhere, as if Redis lost it
    dispatch.install(lost)
    try:
        job_id = still_job(hooked.tenant_id, hooked.rx.url("/lost"))
        emit_job_event(job_id, "job.started")
    finally:
        dispatch.install(previous)
    [row] = deliveries_of(job_id)
    assert lost.deliveries == [(row.id, 0.0)] and row.status == "pending"
    # nothing was queued; beat's sweeper notices once `queue_grace_s` (4 s in tests) has passed
    [done] = wait_final(job_id, 1, timeout=30)
    assert done.status == "succeeded"
    [got] = hooked.rx.received("/lost")
    assert got.verified_with == [0]


def test_no_secret_in_any_log_line(services: dict[str, Proc], api, hooked: Hooked) -> None:
    # some traffic that produces log lines: a failure, then a success, to a URL carrying a token
    hooked.rx.script("/logs", Reply(500, body="no"))
    job_id = still_job(hooked.tenant_id, hooked.rx.url("/logs") + "?token=abc123secret")
    emit_job_event(job_id, "job.started")
    wait_final(job_id, 1)
    with session_scope() as session:
        tenants = list(session.exec(select(Tenant)))
    secrets = [s for t in tenants for s in (t.webhook_secret, t.previous_webhook_secret) if s]
    needles = [*secrets, *(s.removeprefix("whsec_") for s in secrets), hooked.tenant.key, "abc123secret"]
    for proc in services.values():
        text = proc.log.read_text(errors="replace")
        assert "webhook dlv_" in text or proc.name != "worker"  # the worker did log its attempts
        for needle in needles:
            assert needle not in text, f"a secret appears in the {proc.name} log"
        for prefix in ("whsec_", "rm_live_", "nmv_usr_"):
            assert prefix not in text, f"{prefix}… appears in the {proc.name} log"

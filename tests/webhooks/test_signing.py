"""Our signatures against the reference `standardwebhooks` package, and the spec's published example."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.domain.tenants import new_webhook_secret
from shared.webhooks.signing import secret_key, sign, signature_header, webhook_headers

# The example from the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_spec_example() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_reference_library_agrees() -> None:
    secret = new_webhook_secret()
    body = '{"data":{"id":"job_1","prompt":"café ☕"},"type":"job.started"}'.encode()
    ts = int(time.time())
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(ts, tz=UTC), body.decode())
    assert sign(secret, "msg_1", ts, body) == expected
    assert Webhook(secret).verify(body, webhook_headers([secret], "msg_1", body)) is not None


def test_rotation_header_verifies_with_either_secret() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    body = b'{"type":"job.succeeded"}'
    headers = webhook_headers([new, old], "msg_2", body)
    assert headers["webhook-signature"].count(" ") == 1
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)


def test_a_changed_body_or_id_fails() -> None:
    secret = new_webhook_secret()
    headers = webhook_headers([secret], "msg_3", b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', {**headers, "webhook-id": "msg_4"})


def test_secret_forms() -> None:
    raw = bytes(range(32))
    b64 = base64.b64encode(raw).decode()
    assert secret_key("whsec_" + b64) == raw
    assert secret_key("whsec_" + b64.rstrip("=")) == raw
    with pytest.raises(ValueError):
        secret_key("whsec_")
    with pytest.raises(ValueError):
        signature_header([], "msg", 1, b"")

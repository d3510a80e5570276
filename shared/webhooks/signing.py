"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A secret is `whsec_<base64 key>`. A message is signed as `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`,
where the timestamp is the Unix second of the attempt. During a rotation window the `webhook-signature` header
carries one signature per secret, space-separated, so a receiver holding either secret verifies the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"


def secret_key(secret: str) -> bytes:
    """The raw HMAC key of a `whsec_` secret (base64, padding optional)."""
    text = secret.removeprefix(SECRET_PREFIX)
    key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 signature>` of one message."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per secret (current first), space-separated."""
    if not secrets:
        raise ValueError("no webhook secret to sign with")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def webhook_headers(
    secrets: Sequence[str], msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type, signed at ``timestamp`` (default: now)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets, msg_id, ts, body),
    }

"""The webhook body: `{"type", "timestamp", "data"}`, one exact byte string per event.

The bytes are a pure function of the stored event row (compact JSON, sorted keys, UTF-8), so every attempt and
every redelivery of an event sends the same body under the same `webhook-id`.
"""

from __future__ import annotations

import json
from typing import Any

from shared.tables import Event
from shared.timeutil import iso


def payload_of(event: Event) -> dict[str, Any]:
    return {"type": event.type, "timestamp": iso(event.created_at), "data": event.data}


def event_body(event: Event) -> bytes:
    return json.dumps(payload_of(event), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

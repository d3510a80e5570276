"""Reading a render's status from any of the documented reply shapes.

A: ``{"success":true,"data":{"id","status","progress","outputUrl","createdAt","completedAt"}}`` (epoch ms)
B: ``{"taskId","status","progress","output":{"url","duration","size"}}``
Either may come inside the ``{"code":0,"data":...}`` envelope; submit and cancel replies are A without a URL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.nemo.errors import ProtocolError
from shared.nemo.wire import RenderStatus

log = logging.getLogger(__name__)

_STATUS_ALIASES = {
    "pending": ("pending", "queued", "waiting", "created", "submitted"),
    "processing": ("processing", "running", "rendering", "in_progress", "started"),
    "completed": ("completed", "complete", "succeeded", "success", "done", "finished"),
    "failed": ("failed", "failure", "error", "errored"),
    "canceled": ("canceled", "cancelled", "aborted"),
}
_STATUS = {alias: name for name, aliases in _STATUS_ALIASES.items() for alias in aliases}


def normalize_status(value: Any) -> str:
    """One of RENDER_STATUSES; an unknown status reads as "processing" (keep polling: the poll is capped)."""
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(f"render reply without a status: {value!r}")
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _STATUS:
        log.warning("unknown render status %r read as processing", value)
    return _STATUS.get(key, "processing")


def parse_time(value: Any) -> datetime | None:
    """Epoch milliseconds or seconds (number or digit string) or ISO 8601, as an aware UTC datetime."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, tz=UTC)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _inner(body: Mapping[str, Any]) -> Mapping[str, Any]:
    data = body.get("data")
    if isinstance(data, Mapping) and ("status" in data or "id" in data or "taskId" in data):
        return data
    return body


def _error_text(inner: Mapping[str, Any], status: str) -> str | None:
    err = inner.get("error") or inner.get("errorMessage")
    if isinstance(err, Mapping):
        err = err.get("message") or err.get("msg")
    if err:
        return str(err)
    if status == "failed":
        msg = inner.get("message") or inner.get("msg")
        return str(msg) if msg else "render failed"
    return None


def _progress(value: Any, status: str) -> int:
    number = _number(value)
    if number is None:
        return 100 if status == "completed" else 0
    return max(0, min(100, round(number)))


def parse_render_status(body: dict[str, Any]) -> RenderStatus:
    """A ``RenderStatus`` from a status, submit or cancel reply; ``ProtocolError`` when it is not one."""
    if not isinstance(body, Mapping):
        raise ProtocolError("render reply is not a JSON object")
    inner = _inner(body)
    render_id = inner.get("id") or inner.get("taskId") or inner.get("renderId") or inner.get("render_id")
    if not render_id:
        raise ProtocolError("render reply without an id")
    status = normalize_status(inner.get("status"))
    output = inner.get("output") if isinstance(inner.get("output"), Mapping) else {}
    url = inner.get("outputUrl") or inner.get("output_url") or output.get("url") or inner.get("url")
    size = _number(output.get("size", inner.get("size")))
    return RenderStatus(
        id=str(render_id),
        status=status,
        progress=_progress(inner.get("progress"), status),
        output_url=str(url) if url else None,
        duration=_number(output.get("duration", inner.get("duration"))),
        size=int(size) if size is not None else None,
        error=_error_text(inner, status),
        created_at=parse_time(inner.get("createdAt", inner.get("created_at"))),
        completed_at=parse_time(inner.get("completedAt", inner.get("completed_at"))),
        raw=dict(body),
    )

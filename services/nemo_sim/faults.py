"""Injected faults: ``POST /_sim/faults`` arms one, the next ``times`` matching requests fire it.

Most kinds replace the reply (``fault_reply``). Two change a message stream and are taken by ``/run_sse``
only once its stream starts: ``drop`` (cut the connection after ``after_events`` frames) and
``stream_error`` (an in-stream error event). ``drop`` on any other endpoint handles the request, then cuts
the connection before the reply body, like a proxy dying on the way back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import HTMLResponse, Response

from services.nemo_sim.replies import code_error, render_error, session_not_found_sse

Endpoint = Literal[
    "anonymous_token",
    "session",
    "upload",
    "run_sse",
    "state",
    "credits",
    "render_submit",
    "render_status",
    "render_cancel",
    "render_download",
    "render_output",
]
FaultKind = Literal[
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_401",
    "code_1001",
    "code_1002",
    "code_2001",
    "code_4001",
    "code_4002",
    "http_402",
    "drop",
    "stream_error",
]
STREAM_KINDS = frozenset({"drop", "stream_error"})
RENDER_ENDPOINTS = frozenset({"render_submit", "render_status", "render_cancel", "render_download", "render_output"})

# kind -> (HTTP status, upstream code, message)
_REPLIES: dict[str, tuple[int, int, str]] = {
    "http_429": (429, 429, "too many requests, retry later"),
    "http_500": (500, 500, "internal server error"),
    "http_503": (503, 503, "service unavailable"),
    "http_401": (401, 1011, "invalid token"),
    "code_1001": (200, 1001, "token expired"),
    "code_1002": (200, 1002, "session not found"),
    "code_2001": (200, 2001, "insufficient credits"),
    "code_4001": (200, 4001, "unsupported file type"),
    "code_4002": (200, 4002, "file too large"),
    "http_402": (402, 402, "free plan export blocked: upgrade to export"),
}
# A gateway in front of the backend answers 502 in HTML, not in the backend's envelope.
_BAD_GATEWAY_HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: Endpoint
    kind: FaultKind
    times: int = Field(1, ge=1)
    retry_after: float | None = Field(None, ge=0)
    session_id: str | None = None
    after_events: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _stream_error_needs_a_stream(self) -> FaultSpec:
        if self.kind == "stream_error" and self.endpoint != "run_sse":
            raise ValueError("kind stream_error applies to endpoint run_sse only")
        return self


@dataclass
class Fault:
    spec: FaultSpec
    remaining: int


class FaultBook:
    def __init__(self) -> None:
        self._armed: list[Fault] = []

    def add(self, spec: FaultSpec) -> None:
        self._armed.append(Fault(spec=spec, remaining=spec.times))

    def clear(self) -> None:
        self._armed.clear()

    def listing(self) -> list[dict[str, object]]:
        return [{**f.spec.model_dump(), "remaining": f.remaining} for f in self._armed]

    def take(self, endpoint: str, session_id: str | None, stream: bool = False) -> FaultSpec | None:
        """Fire the first armed fault for this request (stream kinds only when ``stream``), if any."""
        for fault in self._armed:
            spec = fault.spec
            if spec.endpoint != endpoint or (spec.kind in STREAM_KINDS and endpoint == "run_sse") != stream:
                continue
            if spec.session_id is not None and spec.session_id != session_id:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._armed.remove(fault)
            return spec
        return None


def fault_reply(spec: FaultSpec, fields: tuple[str, ...] = ("message",)) -> Response:
    """The reply that replaces the real one for a fault of a replacing kind."""
    if spec.kind == "http_502":
        return HTMLResponse(_BAD_GATEWAY_HTML, status_code=502)
    status, code, message = _REPLIES[spec.kind]
    headers = None
    if spec.kind == "http_429" or (spec.kind == "http_503" and spec.retry_after is not None):
        headers = {"Retry-After": _seconds(spec.retry_after if spec.retry_after is not None else 30)}
    if spec.endpoint in RENDER_ENDPOINTS:
        return render_error(status, message, code=code, headers=headers, fields=fields)
    if spec.endpoint == "run_sse" and spec.kind == "code_1002":
        return session_not_found_sse()
    return code_error(code, message, status, fields=fields, headers=headers)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"

"""The upstream's reply envelopes.

The ``/api/`` family answers ``{"code":0,"data":…}`` or ``{"code":N,"message":…}`` (plus ``msg`` when the
config says so); the render family answers ``{"success":…}``; ``/run_sse`` answers ADK's
``{"detail":…}`` for an unknown session. ``SimReply`` lets helpers deep in a handler end the request.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response


class SimReply(Exception):
    """Raised to answer the current request with ``response`` (turned into the reply by the app)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "data": data})


def code_error(
    code: int,
    message: str,
    status: int = 200,
    *,
    msg_field: bool = False,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if msg_field:
        body["msg"] = message
    return JSONResponse(body, status_code=status, headers=headers)


def render_ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"success": True, "data": data})


def render_error(
    status: int, message: str, code: int | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "message": message}
    if code is not None:
        body = {"success": False, "code": code, "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


def session_not_found_sse() -> JSONResponse:
    return JSONResponse({"detail": "Session not found"}, status_code=404)

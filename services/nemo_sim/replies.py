"""The upstream's reply envelopes.

The ``/api/`` family answers ``{"code":0,"data":…}`` or ``{"code":N,"message":…}``; the render family answers
``{"success":…}``; ``/run_sse`` answers ADK's ``{"detail":…}`` for an unknown session. The error text goes in
the fields the config picks (``message``, ``msg`` or both: ``SimState.error_fields``). ``SimReply`` lets
helpers deep in a handler end the request.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

TextFields = tuple[str, ...]
MESSAGE: TextFields = ("message",)


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
    fields: TextFields = MESSAGE,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, **dict.fromkeys(fields, message)}
    return JSONResponse(body, status_code=status, headers=headers)


def render_ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"success": True, "data": data})


def render_error(
    status: int,
    message: str,
    code: int | None = None,
    headers: dict[str, str] | None = None,
    *,
    fields: TextFields = MESSAGE,
) -> JSONResponse:
    body: dict[str, Any] = {"success": False}
    if code is not None:
        body["code"] = code
    body.update(dict.fromkeys(fields, message))
    return JSONResponse(body, status_code=status, headers=headers)


def session_not_found_sse() -> JSONResponse:
    return JSONResponse({"detail": "Session not found"}, status_code=404)

"""One error shape for every failure: `{"error": {"code", "message", "field", "details"}}`."""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from shared.domain.errors import DomainError, RateLimited, TooLarge, Unauthorized, Unavailable

log = logging.getLogger(__name__)


def error_body(code: str, message: str, field: str | None = None, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if details is not None:
        error["details"] = details
    return {"error": error}


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'output', 'format') -> 'output.format'; ('body', 'assets', 0) -> 'assets[0]'."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    details = []
    for err in errors:
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        field = field_name(err.get("loc", ()))
        if not field and ": " in message:  # model-level rules say "<field>: <message>"
            field, message = message.split(": ", 1)
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        if err.get("type") == "missing":
            message = "field required"
        details.append({"field": field or "body", "message": message})
    return details


# Foreign errors that mean "a backing service cannot answer now", not "this request is wrong": the database
# unreachable, out of connections, locked or failing over; Redis or the broker unreachable or slow.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,  # the connection pool stayed full
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    kombu.exceptions.OperationalError,
)


def unavailable(exc: BaseException) -> Unavailable:
    """The one mapping of a backend failure to the API's answer; the cause is logged by class only (a driver's
    message can carry a connection string)."""
    what = "Redis" if isinstance(exc, redis.exceptions.RedisError | kombu.exceptions.OperationalError) else "database"
    log.warning("%s unavailable: %s", what, type(exc).__name__)
    return Unavailable(f"the service's {what} is not answering right now; try again shortly")


def error_headers(exc: DomainError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, TooLarge):
        headers["Connection"] = "close"  # the rest of the body is not read
    return headers


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field, exc.details),
            status_code=exc.status_code,
            headers=error_headers(exc),
        )

    async def _backend(_: Request, exc: Exception) -> JSONResponse:
        mapped = unavailable(exc)
        body = error_body(mapped.code, mapped.message, details=mapped.details)
        return JSONResponse(body, status_code=mapped.status_code, headers=error_headers(mapped))

    for cls in BACKEND_ERRORS:
        app.add_exception_handler(cls, _backend)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody is there to read it; not an error of ours

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(error_body("invalid", message, first["field"], details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse(error_body("internal", "internal error; it has been logged"), status_code=500)

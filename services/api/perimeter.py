"""The API's perimeter, an ASGI middleware in front of every route under `/v1/`:

1. authentication first: the API key is checked from the headers alone, so an anonymous client gets its 401
   before one byte of its body is read (the tenant is handed to the route in `scope["state"]`);
2. one body limit per route class, enforced while the body streams in: a declared Content-Length over the limit
   is refused at once, and a chunked body is counted as it arrives. 413 names the limit.

   | class     | routes                              | setting                       |
   |-----------|-------------------------------------|-------------------------------|
   | CSV       | POST /v1/batches                    | REELMILL_BATCH_MAX_BYTES (+64 KiB of form) |
   | multipart | multipart bodies (POST /v1/jobs)    | REELMILL_MAX_MULTIPART_BYTES  |
   | JSON      | every other body                    | REELMILL_MAX_JSON_BYTES       |
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import BACKEND_ERRORS, error_body, error_headers, unavailable
from shared.domain.errors import DomainError, TooLarge, Unauthorized
from shared.domain.tenants import authenticate_key
from shared.settings import get_settings
from shared.tables import Tenant

PROTECTED = "/v1/"
FORM_SLACK = 64 * 1024  # a batch upload's boundaries and small fields, on top of the CSV file itself


@dataclass(frozen=True)
class BodyLimit:
    limit: int
    what: str  # "a JSON body", ...
    message: str  # the 413's text


def body_limit(method: str, path: str, content_type: str) -> BodyLimit:
    settings = get_settings()
    if method == "POST" and path.rstrip("/") == "/v1/batches":
        size = settings.batch_max_bytes
        return BodyLimit(size + FORM_SLACK, "a batch upload", f"the file is larger than the limit of {size} bytes")
    if content_type.lower().startswith("multipart/"):
        size = settings.max_multipart_bytes
        return BodyLimit(size, "a multipart body", f"the request body is larger than the limit of {size} bytes")
    size = settings.max_json_bytes
    return BodyLimit(size, "a JSON body", f"the request body is larger than the limit of {size} bytes")


def bearer_key(headers: Headers) -> str:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    return key.strip()


async def tenant_of(headers: Headers) -> Tenant:
    """The tenant the request's key belongs to (one short read, off the event loop); Unauthorized otherwise."""
    key = bearer_key(headers)
    return await anyio.to_thread.run_sync(authenticate_key, key)


def _declared_length(headers: Headers) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else None


class _CountedReceive:
    """Passes the body through and raises TooLarge at the first byte over the limit."""

    def __init__(self, receive: Receive, limit: BodyLimit) -> None:
        self.receive = receive
        self.limit = limit
        self.seen = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit.limit:
                raise TooLarge(self.limit.message, field=_field(self.limit))
        return message


def _field(limit: BodyLimit) -> str:
    return "file" if limit.what == "a batch upload" else "body"


class Perimeter:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = body_limit(scope["method"], scope["path"], headers.get("content-type", ""))
        try:
            tenant = await tenant_of(headers)
            declared = _declared_length(headers)
            if declared is not None and declared > limit.limit:
                raise TooLarge(limit.message, field=_field(limit))
        except DomainError as exc:
            await refuse(exc, headers)(scope, receive, send)
            return
        except BACKEND_ERRORS as exc:
            await refuse(unavailable(exc), headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["tenant"] = tenant
        await self.app(scope, _CountedReceive(receive, limit), send)


def refuse(exc: DomainError, headers: Headers) -> JSONResponse:
    """The error response for a request whose body is left unread: the connection closes after it."""
    extra = error_headers(exc)
    if headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers:
        extra["Connection"] = "close"
    body = error_body(exc.code, exc.message, exc.field, exc.details)
    return JSONResponse(body, status_code=exc.status_code, headers=extra)

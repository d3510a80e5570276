"""The one error shape (services/api/errors.py writes it) and the error responses each route declares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: invalid, not_found, unauthorized, too_large, conflict, ...")
    message: str = Field(description="what went wrong, for a person; names the field when there is one")
    field: str | None = Field(default=None, description="the field, header or form part at fault")
    details: Any = Field(default=None, description="every problem, e.g. `[{field, message}]` or row errors")


class ErrorBody(BaseModel):
    """Every error the API answers: `{"error": {"code", "message", "field"?, "details"?}}`."""

    error: ErrorDetail


_WHY = {
    400: "The request could not be read",
    401: "No API key, or not a valid one (`WWW-Authenticate: Bearer`)",
    402: "Not enough upstream credits for the work asked for (the message says how many)",
    404: "Not found (another tenant's resource is not found either)",
    409: "The resource is not in a state that allows this (the message says which)",
    410: "Gone: deleted by retention",
    413: "A body or file over its limit (the message names it)",
    422: "Invalid input (the message names the field; `details` lists every problem)",
    429: "Too many requests (`Retry-After` says when to try again)",
    502: "NemoVideo did not answer",
    503: "A backing store cannot be reached right now",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries of these error statuses, each with the ErrorBody schema."""
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}


def protected(*codes: int) -> dict[int | str, dict[str, Any]]:
    """A route under /v1/: the perimeter answers 401 (no key) and 413 (a declared body over the limit) first."""
    return errors(*sorted({401, 413, *codes}))

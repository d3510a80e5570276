"""Domain errors. The API maps each class to one HTTP status; the CLI prints the message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class ValidationFailed(DomainError):
    status_code = 422
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class InsufficientCredits(DomainError):
    status_code = 402
    code = "insufficient_credits"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class UpstreamUnavailableError(DomainError):
    status_code = 502
    code = "upstream_unavailable"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field, details={"retry_after": retry_after})
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A part reelmill depends on (its database, Redis) cannot answer right now: try again after ``retry_after``."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after

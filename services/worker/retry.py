"""The one retry policy: terminal errors fail the job at once with the message a user should read; transient ones
back off with jitter until the attempt budget runs out.

    1001/1010/1011/401 (after the client's own refresh)  -> retry soon
    1002 / session not found                               -> new session, replay the turns
    429                                                    -> wait Retry-After (or 30 s), then back off
    5xx, dropped connections, stream errors, DB hiccups    -> back off
    2001, 4001, 4002, 402, other 4xx, unreadable replies   -> fail
"""

from __future__ import annotations

import logging
import random

from sqlalchemy.exc import OperationalError

from services.worker.outcome import Outcome
from shared.nemo import errors as ne
from shared.settings import get_settings

log = logging.getLogger(__name__)

ERROR_CODES: list[tuple[type[ne.NemoError], str]] = [
    (ne.OutOfCredits, "out_of_credits"),
    (ne.UnsupportedFileType, "unsupported_file_type"),
    (ne.FileTooLarge, "file_too_large"),
    (ne.ExportBlocked, "export_blocked"),
    (ne.DuplicateRenderId, "duplicate_render"),
    (ne.TokenInvalid, "upstream_auth"),
    (ne.RenderNotFound, "render_lost"),
    (ne.ProtocolError, "upstream_protocol"),
    (ne.NemoError, "upstream_error"),
]


def error_code(exc: ne.NemoError) -> str:
    return next(code for cls, code in ERROR_CODES if isinstance(exc, cls))


def backoff(attempt: int) -> float:
    settings = get_settings()
    delay = min(settings.retry_max_s, settings.retry_base_s * (2**attempt))
    return delay * random.uniform(0.8, 1.2)


def decide(exc: BaseException, attempts: int) -> Outcome:
    """Turn an exception raised by a step into the job's next move."""
    settings = get_settings()
    if isinstance(exc, ne.NemoError) and not exc.retryable:
        return Outcome.fail(error_code(exc), exc.user_message)
    if attempts + 1 >= settings.max_step_attempts:
        if isinstance(exc, ne.NemoError):
            return Outcome.fail("upstream_unavailable", f"gave up after {attempts + 1} attempts: {exc.user_message}")
        return Outcome.fail("internal", f"gave up after {attempts + 1} attempts on an internal error")
    if isinstance(exc, ne.SessionNotFound):
        return Outcome(next_stage=None, retry=True, new_session=True, note="session lost: new session and replay")
    if isinstance(exc, ne.RateLimited):
        wait = exc.retry_after if exc.retry_after is not None else settings.rate_limit_wait_s
        return Outcome.again(max(wait, backoff(attempts) if attempts else 0.0), "rate limited (429)")
    if isinstance(exc, ne.NemoError | OperationalError):
        return Outcome.again(backoff(attempts), f"transient: {type(exc).__name__}")
    log.error("unexpected %s in a step; retrying", type(exc).__name__, exc_info=exc)
    return Outcome.again(backoff(attempts), f"unexpected: {type(exc).__name__}")

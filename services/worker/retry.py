"""The one retry policy: what an exception raised by a step means for the job.

terminal upstream errors (2001, 4001, 4002, 402, other 4xx, unreadable replies)  -> Fail, with the user's message
429                                   -> Throttle: the credential's pace slows, the job waits; never an attempt
1002 / session not found              -> NewSession (replay), an attempt
404 on a render poll (render unknown)  -> submit the draft again (a new render id); a lost session then replays
1001/1010/1011/401 (after the client's own refresh), 5xx, dropped connections, stream errors
                                      -> RetryAfter with backoff and jitter, an attempt; Fail once spent
reelmill's own trouble (the database restarting, Redis gone, the lease lost)
                                      -> RetryAfter without an attempt: a crash is never a job's reason to fail
anything else (a bug)                 -> RetryAfter, an attempt; Fail `internal` once spent
"""

from __future__ import annotations

import logging
import random

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from services.worker.outcome import Advance, Fail, NewSession, Outcome, RetryAfter, Throttle
from shared.nemo import errors as ne
from shared.settings import get_settings
from shared.tables import Stage

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
INFRA_ERRORS = (OperationalError, RedisError)  # reelmill's own parts, restarting or out of reach


# A render the upstream no longer knows (after a token refresh the new anonymous user owns none of the old one's
# renders): submit the turn's draft again under a new id; if the session went too, that submit's 1002 replays it.
RENDER_LOST = Advance(
    turn={"render_id": None, "render_submitted": False, "render_status": None, "render_progress": 0},
    stage=Stage.render_submit,
    note="the upstream does not know the render: submitting it again",
)


def error_code(exc: ne.NemoError) -> str:
    return next(code for cls, code in ERROR_CODES if isinstance(exc, cls))


def backoff(attempt: int) -> float:
    settings = get_settings()
    delay = min(settings.retry_max_s, settings.retry_base_s * (2**attempt))
    return delay * random.uniform(0.8, 1.2)


def resource_of(stage: Stage) -> str:
    """The pace class a stage's calls belong to (shared/pace): streams, renders, or plain calls."""
    if stage == Stage.message:
        return "streams"
    if stage in (Stage.render_submit, Stage.render_poll):
        return "renders"
    return "calls"


def decide(exc: BaseException, attempts: int, stage: Stage, sessions_lost: int = 0) -> Outcome:
    """Turn an exception raised by a step into the job's next move (``sessions_lost``: the job's so far)."""
    settings = get_settings()
    if isinstance(exc, ne.RenderNotFound) and stage == Stage.render_poll:
        return RENDER_LOST
    if isinstance(exc, ne.NemoError) and not exc.retryable:
        return Fail(error_code(exc), exc.user_message)
    if isinstance(exc, ne.Paced):
        return Throttle(resource_of(stage), wait_s=exc.retry_after, reason="keeping NemoVideo's pace")
    if isinstance(exc, ne.RateLimited):
        wait = exc.retry_after if exc.retry_after is not None else settings.rate_limit_wait_s
        return Throttle(resource_of(stage), wait_s=wait, reason="NemoVideo asked reelmill to slow down (429)")
    if _is_infra(exc):
        log.warning("%s during %s; trying again (no attempt spent)", type(exc).__name__, stage.value)
        return RetryAfter(backoff(min(attempts, 4)), f"reelmill's own {type(exc).__name__}", spend=False)
    if attempts + 1 >= settings.max_step_attempts:
        if isinstance(exc, ne.NemoError):
            return Fail("upstream_unavailable", f"gave up after {attempts + 1} attempts: {exc.user_message}")
        return Fail("internal", f"gave up after {attempts + 1} attempts on an internal error")
    if isinstance(exc, ne.SessionNotFound):
        if sessions_lost + 1 >= settings.max_step_attempts:
            return Fail("upstream_unavailable", f"NemoVideo lost this job's session {sessions_lost + 1} times")
        return NewSession("the upstream lost the session: a new one, the turns replayed into it")
    if isinstance(exc, ne.NemoError):
        return RetryAfter(backoff(attempts), f"transient: {type(exc).__name__}")
    log.error("unexpected %s in a step; retrying", type(exc).__name__, exc_info=exc)
    return RetryAfter(backoff(attempts), f"unexpected: {type(exc).__name__}")


def _is_infra(exc: BaseException) -> bool:
    if isinstance(exc, INFRA_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated

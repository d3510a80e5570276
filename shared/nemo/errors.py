"""Every way a NemoVideo call can fail, as one tree; retryable or terminal by class.

    NemoError                         .code .http_status .retryable .user_message .retry_after .sent
    ├── RetryableError                retryable = True: the caller may try again (with backoff)
    │   ├── TokenInvalid              1001 / 1010 / 1011 / HTTP 401: refresh the token, retry
    │   │                             (a provider that cannot refresh raises it with retryable=False)
    │   ├── SessionNotFound           1002 / HTTP 404 {"detail":"Session not found"}: new session, replay
    │   ├── RateLimited               HTTP 429: .retry_after from Retry-After (seconds or HTTP date) or None
    │   ├── UpstreamUnavailable       HTTP 5xx
    │   ├── UpstreamConnectionError   connect/read errors, timeouts, a stream dropped before it closed;
    │   │                             .partial: the StreamResult read before the drop (or None)
    │   ├── StreamFailed              an error event inside an SSE stream (no known code)
    │   ├── RenderNotReady            download asked before the render completed (HTTP 409)
    │   └── Paced                     not sent: reelmill holds the call back to keep the credential's pace
    │                                 (shared/pace); .retry_after says when it may go
    ├── TerminalError                 retryable = False: fail the job with .user_message
    │   ├── OutOfCredits              2001; .register_url for anonymous users (user id "anon_...")
    │   ├── UnsupportedFileType       4001; the message lists the accepted formats
    │   ├── FileTooLarge              4002 / HTTP 413; the message names the profile's limit
    │   ├── MissingClientId           HTTP 400 from anonymous-token
    │   ├── ExportBlocked             HTTP 402 (subscription tier, not credits)
    │   ├── DuplicateRenderId         render id refused as a duplicate (HTTP 409)
    │   ├── EmptyDraft                render refused: the draft has no segment (HTTP 400)
    │   ├── UpstreamRejected          any other 4xx or unknown non-zero code
    │   └── ProtocolError             a reply we cannot read
    └── RenderNotFound                HTTP 404 on render status/cancel (retryable = False)

``.sent`` tells, for a message (``/run_sse``), whether the upstream took it: ``False`` when it was refused before
its event stream began (an HTTP error, a JSON envelope, no connection), so sending it again is no duplicate;
``True`` once the stream began; ``None`` when nobody can know (the connection broke before the first byte) or for
any other call.

``error_from_reply`` turns one upstream reply into the matching error (or ``None`` for success). Messages pass
through ``redact`` so that a token echoed by the upstream never reaches a log line or a user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.nemo.profiles import BACKEND_FORMATS, SkillProfile
from shared.retry_after import parse_retry_after

if TYPE_CHECKING:
    from shared.nemo.wire import StreamResult

REGISTER_URL = "https://nemovideo.com/register?bind={user_id}"
_SECRET_PATTERNS = (
    re.compile(r"nmv_[A-Za-z0-9_\-.]+"),
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known secrets and anything shaped like a NemoVideo token or bearer value masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _SECRET_PATTERNS[0].sub("nmv_***", text)
    return _SECRET_PATTERNS[1].sub(r"\1***", text)


class NemoError(Exception):
    retryable: bool = False
    default_user_message = "NemoVideo reported an error."

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        http_status: int | None = None,
        user_message: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message = redact(message or self.default_user_message)
        self.code = code
        self.http_status = http_status
        self.user_message = redact(user_message or self.default_user_message)
        self.retry_after = retry_after
        self.sent: bool | None = None
        if retryable is not None:
            self.retryable = retryable  # instance override, e.g. a token that cannot be refreshed
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [
            f"code={self.code}" if self.code is not None else "",
            f"http={self.http_status}" if self.http_status is not None else "",
        ]
        tag = " ".join(p for p in parts if p)
        return f"{self.message} ({tag})" if tag else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code}, http_status={self.http_status})"


class RetryableError(NemoError):
    retryable = True
    default_user_message = "NemoVideo had a temporary problem; reelmill will retry."


class TokenInvalid(RetryableError):
    default_user_message = "The NemoVideo access token was rejected (expired or invalid)."


class SessionNotFound(RetryableError):
    default_user_message = "The NemoVideo session was not found; reelmill will start a new one."


class RateLimited(RetryableError):
    default_user_message = "NemoVideo is rate limiting requests; reelmill will retry shortly."


class UpstreamUnavailable(RetryableError):
    default_user_message = "NemoVideo is temporarily unavailable; reelmill will retry."


class UpstreamConnectionError(RetryableError):
    default_user_message = "The connection to NemoVideo failed; reelmill will retry."

    def __init__(self, message: str = "", *, partial: StreamResult | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial = partial


class StreamFailed(RetryableError):
    default_user_message = "NemoVideo's agent reported an error while working on the request."


class RenderNotReady(RetryableError):
    default_user_message = "The render is not finished yet."


class Paced(RetryableError):
    default_user_message = "Waiting for NemoVideo capacity."

    def __init__(self, call_class: str, wait_s: float) -> None:
        super().__init__(f"{call_class} call held back {wait_s:.2f} s to keep the pace", retry_after=wait_s)
        self.call_class = call_class
        self.sent = False


class TerminalError(NemoError):
    retryable = False


class OutOfCredits(TerminalError):
    default_user_message = "Out of NemoVideo credits: top up the account to continue."

    def __init__(self, message: str = "", *, user_id: str | None = None, **kwargs: Any) -> None:
        self.user_id = user_id
        self.register_url = register_url_for(user_id)
        if self.register_url and "user_message" not in kwargs:
            kwargs["user_message"] = f"Out of free NemoVideo credits. Register to keep going: {self.register_url}"
        super().__init__(message or "insufficient credits", **kwargs)

    def for_user(self, user_id: str | None) -> OutOfCredits:
        """The same error, with the registration link of ``user_id`` when it is anonymous."""
        if not user_id or user_id == self.user_id:
            return self
        return OutOfCredits(self.message, user_id=user_id, code=self.code, http_status=self.http_status)


class UnsupportedFileType(TerminalError):
    default_user_message = "Unsupported file type. Accepted formats: " + ", ".join(sorted(BACKEND_FORMATS))


class FileTooLarge(TerminalError):
    default_user_message = "The file is too large for NemoVideo; compress or trim it and try again."


class MissingClientId(TerminalError):
    default_user_message = "reelmill did not send a valid X-Client-Id when asking for a token (a bug)."


class ExportBlocked(TerminalError):
    default_user_message = (
        "NemoVideo blocked the export: the plan's subscription tier does not allow it (not a credits issue)."
    )


class DuplicateRenderId(TerminalError):
    default_user_message = "NemoVideo already has a render with this id."


class EmptyDraft(TerminalError):
    default_user_message = "There is nothing to export yet: the project's timeline is empty."


class UpstreamRejected(TerminalError):
    default_user_message = "NemoVideo refused the request."


class ProtocolError(TerminalError):
    default_user_message = "NemoVideo sent a reply reelmill could not read."


class RenderNotFound(NemoError):
    retryable = False
    default_user_message = "NemoVideo does not know this render."


def register_url_for(user_id: str | None) -> str | None:
    """The registration link that binds an anonymous user's work to a new account; ``None`` otherwise."""
    if user_id and user_id.startswith("anon_"):
        return REGISTER_URL.format(user_id=quote(user_id, safe=""))
    return None


def unsupported_type(
    filename: str,
    profile: SkillProfile | None = None,
    *,
    code: int | None = None,
    http_status: int | None = None,
    message: str = "",
) -> UnsupportedFileType:
    accepted = sorted(profile.accepted_formats if profile else BACKEND_FORMATS)
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    what = f"'.{ext}'" if ext else "(no extension)"
    user = f"Unsupported file type {what}. Accepted formats: {', '.join(accepted)}."
    if profile:
        user += f" Best results with {', '.join(f.upper() for f in profile.preferred_formats)}."
    return UnsupportedFileType(
        message or f"unsupported file type {what}", code=code, http_status=http_status, user_message=user
    )


def too_large(
    filename: str,
    size: int | None,
    profile: SkillProfile | None = None,
    *,
    code: int | None = None,
    http_status: int | None = None,
    message: str = "",
) -> FileTooLarge:
    limit = profile.max_upload_label if profile else "the upload limit"
    name = f"'{filename}'" if filename else "The file"
    size_part = f" is {size / (1024 * 1024):.1f} MB;" if size is not None else " is too large;"
    who = f" for {profile.title}" if profile else ""
    user = f"{name}{size_part} the limit{who} is {limit}. Compress or trim it and try again."
    return FileTooLarge(message or f"file too large: > {limit}", code=code, http_status=http_status, user_message=user)


# --- reply -> error ---------------------------------------------------------------------------------

_TOKEN_CODES = frozenset({1001, 1010, 1011})


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _message_of(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("message", "msg", "detail", "error", "errorMessage"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, Mapping):
                return _message_of(value)
    if isinstance(body, str):
        return body[:300]
    return ""


def _is_error_body(body: Any) -> bool:
    if not isinstance(body, Mapping):
        return False
    code = _as_int(body.get("code"))
    return (code is not None and code != 0) or body.get("success") is False


def error_for_code(
    code: int,
    msg: str,
    *,
    http_status: int | None = None,
    user_id: str | None = None,
    profile: SkillProfile | None = None,
) -> NemoError | None:
    """The error for a documented NemoVideo code (1001, 1002, 2001, 4001, ...); ``None`` if unknown."""
    status = http_status
    if code in _TOKEN_CODES:
        return TokenInvalid(msg, code=code, http_status=status)
    if code == 1002:
        return SessionNotFound(msg, code=code, http_status=status)
    if code == 2001:
        return OutOfCredits(msg, code=code, http_status=status, user_id=user_id)
    if code == 4001:
        return unsupported_type(_filename_in(msg), profile, code=code, http_status=status, message=msg)
    if code == 4002:
        return too_large(_filename_in(msg), None, profile, code=code, http_status=status, message=msg)
    return None


def _filename_in(msg: str) -> str:
    match = re.search(r"([\w\-. ]+\.[A-Za-z0-9]{1,5})\b", msg)
    if match:
        return match.group(1).strip()
    ext = re.search(r"(\.[A-Za-z0-9]{1,5})\b", msg)
    return f"file{ext.group(1)}" if ext else ""


def _client_error(effective: int, msg: str, profile: SkillProfile | None, kw: dict[str, Any]) -> NemoError:
    low = msg.lower()
    by_status: dict[int, type[NemoError]] = {401: TokenInvalid, 402: ExportBlocked}
    if effective in by_status:
        return by_status[effective](msg, **kw)
    if effective == 413:
        return too_large("", None, profile, message=msg, **kw)
    if effective == 404 and "session" in low:
        return SessionNotFound(msg, **kw)
    if effective == 404 and "render" in low:
        return RenderNotFound(msg, **kw)
    if effective == 409:
        duplicate = "exist" in low or "duplicate" in low
        return DuplicateRenderId(msg, **kw) if duplicate else RenderNotReady(msg, **kw)
    if effective == 400 and "client" in low and "id" in low:
        return MissingClientId(msg, **kw)
    if effective == 400 and "draft" in low:
        return EmptyDraft(msg, **kw)
    return UpstreamRejected(msg or f"HTTP {effective}", **kw)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def error_from_reply(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    user_id: str | None = None,
    profile: SkillProfile | None = None,
) -> NemoError | None:
    """The error one upstream reply stands for, or ``None`` when it is a success.

    A non-zero ``code`` (or ``"success": false``) is an error whatever the HTTP status; a known code decides
    the class before the status does. A 4xx/5xx code inside a 2xx reply counts as that status.
    """
    code = _as_int(body.get("code")) if isinstance(body, Mapping) else None
    msg = _message_of(body)
    if code and (known := error_for_code(code, msg, http_status=status, user_id=user_id, profile=profile)):
        return known
    effective = status
    if status < 400 and code is not None and 400 <= code < 600:
        effective = code
    kw: dict[str, Any] = {"code": code, "http_status": status}
    if effective == 429:
        retry = parse_retry_after(_header(headers, "retry-after"))
        return RateLimited(msg or "rate limited", retry_after=retry, **kw)
    if effective >= 500:
        return UpstreamUnavailable(msg or f"HTTP {status}", **kw)
    if effective >= 400:
        return _client_error(effective, msg, profile, kw)
    if _is_error_body(body):
        return UpstreamRejected(msg or f"upstream error code {code}", code=code, http_status=status)
    return None

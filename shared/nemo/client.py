"""NemoClient: the one place reelmill speaks NemoVideo's API (sync, thread-safe, one pool per process).

Every request carries the profile's attribution headers and, except minting, ``Authorization: Bearer``.
On ``TokenInvalid`` the call is retried once with ``tokens.refresh(stale)``; on ``OutOfCredits`` the token
provider hears ``exhausted``. Nothing else is retried here: the worker owns the retry policy.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from shared.nemo import replies
from shared.nemo.draft import is_export_ready
from shared.nemo.errors import (
    EmptyDraft,
    MissingClientId,
    NemoError,
    OutOfCredits,
    Paced,
    ProtocolError,
    RenderNotFound,
    SessionNotFound,
    TokenInvalid,
    UpstreamConnectionError,
    error_from_reply,
    redact,
)
from shared.nemo.profiles import SkillProfile, get_profile
from shared.nemo.render_status import parse_render_status
from shared.nemo.stream_reader import EventCallback, is_event_stream, read_event_stream
from shared.nemo.tokens import TokenProvider, provider_from_settings
from shared.nemo.uploads import multipart_files, validate_upload, validate_url
from shared.nemo.wire import (
    AnonymousToken,
    Credits,
    RenderStatus,
    SessionInfo,
    SessionState,
    StreamResult,
    UploadedFile,
)
from shared.retry_after import parse_retry_after

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

APP = "nemo_agent"
PATH_ANON_TOKEN = "/api/auth/anonymous-token"
PATH_SESSION = f"/api/tasks/me/with-session/{APP}"
PATH_UPLOAD = f"/api/upload-video/{APP}/me/{{sid}}"
PATH_RUN_SSE = "/run_sse"
PATH_STATE = f"/api/state/{APP}/me/{{sid}}/latest"
PATH_CREDITS = "/api/credits/balance/simple"
PATH_RENDER = "/api/render/proxy/lambda"
PATH_RENDER_ONE = "/api/render/proxy/lambda/{rid}"
PATH_RENDER_CANCEL = "/api/render/proxy/lambda/{rid}/cancel"
PATH_RENDER_DOWNLOAD = "/api/render/proxy/{rid}/download"
DOWNLOAD_CHUNK = 256 * 1024
MAX_REDIRECTS = 5
UPLOAD_READ_TIMEOUT_S = 300.0  # the upstream may probe a large file before it answers
# Transport errors raised before a request could reach the upstream: a message that met one was not sent.
NOT_SENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
ProfileArg = str | SkillProfile | None


def _seg(value: str) -> str:
    return quote(str(value), safe="")


POOL_SHARDS = 16


_step_paid: ContextVar[list[bool] | None] = ContextVar("reelmill_step_paid", default=None)


@contextmanager
def one_pace_per_step() -> Iterator[None]:
    """Inside, only a step's first call can be held back by the pace; the few calls after it go at once (and are
    counted when the rate allows). A step held back between two of its own calls would give up the token its first
    call took, and under a tight rate could be held back that way for ever."""
    token = _step_paid.set([False])
    try:
        yield
    finally:
        _step_paid.reset(token)


class Pace(Protocol):
    """The credential's pace (shared/pace/limiter.py): asked before every call, told how each one went."""

    def take(self, cls: str) -> float: ...

    def penalize(self, cls: str, retry_after_s: float | None = None) -> float: ...

    def reward(self, cls: str) -> None: ...


def call_class(method: str, path: str) -> str:
    """The pace class of a call: opening a message stream, submitting a render, or any other call."""
    if path == PATH_RUN_SSE:
        return "stream"
    if method == "POST" and path == PATH_RENDER:
        return "render"
    return "call"


class NemoClient:
    pace: Pace | None = None  # workers set it (shared/nemo/upstream.py); the API and tests call unpaced

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider | None = None,
        *,
        profile: ProfileArg = None,
        platform: str = "unknown",
        timeout_s: float = 30.0,
        max_connections: int = 1000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.profile = get_profile(profile)
        self.platform = platform
        self.timeout_s = timeout_s
        # httpcore scans its whole pool on every request, so one pool of 1,000 connections costs O(n) per call;
        # several smaller pools (one per group of threads) keep that scan short. One TLS context serves them all.
        shards = 1 if transport is not None else max(1, min(POOL_SHARDS, max_connections // 64))
        per_shard = max(1, max_connections // shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        tls = httpx.create_ssl_context()
        self._pools = [
            httpx.Client(
                base_url=self.base_url,
                timeout=httpx.Timeout(timeout_s),
                limits=limits,
                transport=transport,
                verify=tls,
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # never carry cookies across users
                headers={"User-Agent": "reelmill-nemo-client/0.1"},
            )
            for _ in range(shards)
        ]
        self._user_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, tokens: TokenProvider | None = None) -> NemoClient:
        """A client per settings; without ``tokens``: NEMO_TOKEN if set, else anonymous tokens it mints."""
        client = cls(
            settings.nemo_base_url, tokens, platform=settings.skill_platform, timeout_s=settings.nemo_timeout_s
        )
        if tokens is None:
            client.tokens = provider_from_settings(settings, client.mint_anonymous_token)
        return client

    def __repr__(self) -> str:
        return f"NemoClient({self.base_url!r}, profile={self.profile.source!r})"

    @property
    def _http(self) -> httpx.Client:
        """The connection pool for the calling thread."""
        return self._pools[threading.get_native_id() % len(self._pools)]

    def close(self) -> None:
        for pool in self._pools:
            pool.close()

    def __enter__(self) -> NemoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------

    def _profile(self, profile: ProfileArg) -> SkillProfile:
        return self.profile if profile is None else get_profile(profile)

    def _headers(self, profile: SkillProfile, token: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = profile.attribution_headers(self.platform)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return {**headers, **(extra or {})}

    def _remember_user(self, token: str, user_id: str | None) -> None:
        if user_id:
            with self._lock:
                if len(self._user_ids) > 10_000:
                    self._user_ids.clear()
                self._user_ids[token] = user_id

    def _user_id_for(self, token: str | None) -> str | None:
        if token is None:
            return None
        known = self._user_ids.get(token)
        lookup = getattr(self.tokens, "user_id_for", None)
        return known or (lookup(token) if callable(lookup) else None)

    def _token(self) -> str:
        if self.tokens is None:
            raise TokenInvalid(
                "NemoClient has no token provider", retryable=False, user_message="No NemoVideo token is configured."
            )
        return self.tokens.token()

    def _authed(self, call: Callable[[str], T]) -> T:
        """``call(token)``; after ``TokenInvalid`` once more with a refreshed token."""
        token = self._token()
        try:
            return call(token)
        except TokenInvalid as exc:
            if self.tokens is None or not exc.retryable:
                raise
            log.info("nemo token rejected (%s); refreshing once", exc.code or exc.http_status)
            fresh = self.tokens.refresh(token)
        return call(fresh)

    def _send(
        self,
        method: str,
        path: str,
        *,
        profile: SkillProfile,
        token: str | None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        cls = call_class(method, path)
        self.pace_before(cls)
        started = time.perf_counter()
        status: int | str = "error"
        try:
            resp = self._http.request(method, path, headers=self._headers(profile, token, headers), **kwargs)
            status = resp.status_code
            self.pace_after(cls, resp)
            return resp
        except httpx.HTTPError as exc:
            status = type(exc).__name__
            raise _transport_error(method, path, exc) from exc
        finally:
            _log_request(method, path, status, started)

    def pace_before(self, cls: str) -> None:
        """Raise ``Paced`` when the credential's pace holds a call of ``cls`` back (nothing is sent)."""
        if self.pace is None:
            return
        paid = _step_paid.get()
        if paid is not None and paid[0]:
            self.pace.take(cls)  # mid-step: counted if the rate allows, never held back
            return
        wait = self.pace.take(cls)
        if wait > 0:
            raise Paced(cls, wait)
        if paid is not None:
            paid[0] = True

    def pace_after(self, cls: str, resp: httpx.Response) -> None:
        """A 429 slows the whole credential's calls of ``cls``; a success lets the pace recover."""
        if self.pace is None:
            return
        if resp.status_code == 429:
            self.pace.penalize(cls, parse_retry_after(resp.headers.get("retry-after")))
        elif resp.status_code < 400:
            self.pace.reward(cls)

    def _reply(
        self,
        resp: httpx.Response,
        *,
        token: str | None,
        profile: SkillProfile,
        not_found: type[NemoError] | None = None,
    ) -> Any:
        """The reply's JSON body, or the error it stands for (raised)."""
        try:
            body: Any = resp.json()
        except ValueError:
            if resp.status_code < 400:
                path = resp.request.url.path
                raise ProtocolError(f"{path}: HTTP {resp.status_code} reply is not JSON") from None
            body = resp.text[:300]
        err = error_from_reply(resp.status_code, body, resp.headers, profile=profile)
        if err is None and not resp.is_success:
            err = ProtocolError(
                f"{resp.request.url.path}: unexpected HTTP {resp.status_code}", http_status=resp.status_code
            )
        if err is None:
            return body
        if not_found is not None and resp.status_code == 404 and not isinstance(err, SessionNotFound):
            err = not_found(err.message, code=err.code, http_status=404)
        self._raise(err, token)

    def _raise(self, err: NemoError, token: str | None) -> NoReturn:
        if isinstance(err, OutOfCredits):
            err = err.for_user(self._user_id_for(token))  # looked up only now: a provider may ask its database
        if token:
            err.message = redact(err.message, [token])
            err.user_message = redact(err.user_message, [token])
            err.args = (err.message,)
        if isinstance(err, OutOfCredits) and token and self.tokens is not None:
            self.tokens.exhausted(token, err.user_id)
        raise err

    def _json_call(
        self, method: str, path: str, profile: SkillProfile, *, not_found: type[NemoError] | None = None, **kwargs: Any
    ) -> Any:
        def call(token: str) -> Any:
            resp = self._send(method, path, profile=profile, token=token, **kwargs)
            return self._reply(resp, token=token, profile=profile, not_found=not_found)

        return self._authed(call)

    # --- auth and session -------------------------------------------------------------------------------

    def mint_anonymous_token(self, client_id: str) -> AnonymousToken:
        """A fresh anonymous token for ``client_id`` (no Authorization header). Rate-limited upstream: reuse it."""
        if not client_id or len(client_id) > 64:
            raise MissingClientId("X-Client-Id must be 1-64 characters")
        profile = self.profile
        resp = self._send("POST", PATH_ANON_TOKEN, profile=profile, token=None, headers={"X-Client-Id": client_id})
        if resp.status_code == 400:
            raise MissingClientId(_short_text(resp), http_status=400)
        minted = replies.parse_anonymous_token(self._reply(resp, token=None, profile=profile))
        self._remember_user(minted.token, minted.user_id)
        log.info("nemo minted an anonymous token for client %s (user %s)", client_id, minted.user_id)
        return minted

    def create_session(
        self, *, language: str = "en", task_name: str = "project", profile: ProfileArg = None
    ) -> SessionInfo:
        prof = self._profile(profile)

        def call(token: str) -> SessionInfo:
            resp = self._send(
                "POST", PATH_SESSION, profile=prof, token=token, json={"task_name": task_name, "language": language}
            )
            info = replies.parse_session(self._reply(resp, token=token, profile=prof))
            self._remember_user(token, info.user_id)
            return info

        return self._authed(call)

    # --- uploads ---------------------------------------------------------------------------------------

    def upload_files(self, session_id: str, paths: Sequence[Path], *, profile: ProfileArg = None) -> list[UploadedFile]:
        """Upload ``paths`` in one multipart request, streamed from disk; checked against the profile first."""
        prof = self._profile(profile)
        files = [Path(p) for p in paths]
        for path in files:
            validate_upload(path, prof)
        if not files:
            return []
        timeout = httpx.Timeout(self.timeout_s, read=max(self.timeout_s, UPLOAD_READ_TIMEOUT_S))

        def call(token: str) -> list[UploadedFile]:
            with ExitStack() as stack:
                resp = self._send(
                    "POST",
                    PATH_UPLOAD.format(sid=_seg(session_id)),
                    profile=prof,
                    token=token,
                    files=multipart_files(files, stack),
                    timeout=timeout,
                )
            return replies.parse_uploaded(self._reply(resp, token=token, profile=prof))

        return self._authed(call)

    def upload_urls(self, session_id: str, urls: Sequence[str], *, profile: ProfileArg = None) -> list[UploadedFile]:
        prof = self._profile(profile)
        for url in urls:
            validate_url(url, prof)
        body = {"urls": list(urls), "source_type": "url"}
        path = PATH_UPLOAD.format(sid=_seg(session_id))
        return replies.parse_uploaded(self._json_call("POST", path, prof, json=body))

    # --- the agent --------------------------------------------------------------------------------------

    def send_message(
        self,
        session_id: str,
        text: str,
        *,
        profile: ProfileArg = None,
        on_event: EventCallback | None = None,
        max_s: float = 900.0,
        idle_s: float = 180.0,
    ) -> StreamResult:
        """Send one message and read the agent's stream to its end (or ``max_s``, or ``idle_s`` of silence).

        In-stream errors come back in ``result.error``; a connection lost mid-stream raises
        ``UpstreamConnectionError`` with ``.partial``. ``on_event`` sees every event, heartbeats included. Every
        error raised says in ``.sent`` whether the upstream took the message (see errors.py).
        """
        prof = self._profile(profile)
        body = message_body(session_id, text)
        return self._authed(lambda token: self._stream_once(token, prof, body, on_event, max_s, idle_s))

    def _stream_once(
        self,
        token: str,
        profile: SkillProfile,
        body: dict[str, Any],
        on_event: EventCallback | None,
        max_s: float,
        idle_s: float,
    ) -> StreamResult:
        started = time.monotonic()
        status: int | str = "error"
        began = False  # the response's headers arrived: the upstream answered
        request = self.stream_request(token, profile, idle_s, max_s)
        self.pace_before("stream")
        try:
            with self._http.stream("POST", PATH_RUN_SSE, json=body, **request) as resp:
                status, began = resp.status_code, True
                self.pace_after("stream", resp)
                if not is_event_stream(resp):
                    resp.read()
                    self.refused_stream(resp, token, profile)
                result = read_event_stream(resp, started=started, max_s=max_s, on_event=on_event)
        except NemoError as exc:
            raise mark_sent(exc, began) from None
        except httpx.HTTPError as exc:
            status = type(exc).__name__
            raise mark_sent(_transport_error("POST", PATH_RUN_SSE, exc), began, exc) from exc
        finally:
            _log_request("POST", PATH_RUN_SSE, status, started, clock=time.monotonic)
        return self.stream_done(result, token)

    def stream_request(self, token: str, profile: SkillProfile, idle_s: float, max_s: float) -> dict[str, Any]:
        """Headers and timeout of a ``/run_sse`` request (the sync and async clients send the same)."""
        headers = self._headers(profile, token, {"Accept": "text/event-stream", "Cache-Control": "no-store"})
        return {"headers": headers, "timeout": httpx.Timeout(self.timeout_s, read=min(idle_s, max_s))}

    def refused_stream(self, resp: httpx.Response, token: str, profile: SkillProfile) -> NoReturn:
        """``/run_sse`` answered (its body read) without an event stream: the error it stands for."""
        self._reply(resp, token=token, profile=profile)
        raise ProtocolError(f"run_sse answered HTTP {resp.status_code} without an event stream")

    def stream_done(self, result: StreamResult, token: str) -> StreamResult:
        if isinstance(result.error, OutOfCredits):
            error = result.error.for_user(self._user_id_for(token))
            result = dataclasses.replace(result, error=error)
            if self.tokens is not None:
                self.tokens.exhausted(token, error.user_id)
        return result

    # --- state and credits ------------------------------------------------------------------------------

    def get_state(self, session_id: str, *, profile: ProfileArg = None) -> SessionState:
        prof = self._profile(profile)
        body = self._json_call("GET", PATH_STATE.format(sid=_seg(session_id)), prof)
        return replies.parse_state(body, session_id)

    def get_credits(self, *, profile: ProfileArg = None) -> Credits:
        return replies.parse_credits(self._json_call("GET", PATH_CREDITS, self._profile(profile)))

    # --- renders ----------------------------------------------------------------------------------------

    def submit_render(
        self,
        render_id: str,
        session_id: str,
        draft: dict[str, Any],
        *,
        format: str = "mp4",
        quality: str = "high",
        profile: ProfileArg = None,
    ) -> RenderStatus:
        """Start an export. ``render_id`` must be new: look a retried submit up with ``get_render`` first."""
        if not is_export_ready(draft):
            raise EmptyDraft("draft has no track with a segment")
        body = {
            "id": render_id,
            "sessionId": session_id,
            "draft": draft,
            "output": {"format": format, "quality": quality},
        }
        return parse_render_status(self._json_call("POST", PATH_RENDER, self._profile(profile), json=body))

    def get_render(self, render_id: str, *, profile: ProfileArg = None) -> RenderStatus:
        path = PATH_RENDER_ONE.format(rid=_seg(render_id))
        body = self._json_call("GET", path, self._profile(profile), not_found=RenderNotFound)
        return parse_render_status(body)

    def cancel_render(self, render_id: str, *, profile: ProfileArg = None) -> RenderStatus | None:
        """The render's status after cancelling; ``None`` when the reply carries no status."""
        path = PATH_RENDER_CANCEL.format(rid=_seg(render_id))
        body = self._json_call("POST", path, self._profile(profile), not_found=RenderNotFound)
        try:
            return parse_render_status(body)
        except ProtocolError:
            return None

    def download_render(self, render_id: str, dest: Path, *, profile: ProfileArg = None) -> Path:
        """The render's MP4, streamed to ``dest`` (written to ``dest.part`` first, then renamed)."""
        return _save(self.open_render(render_id, profile=profile), Path(dest))

    def download_url(self, url: str, dest: Path) -> Path:
        """GET a render's output URL to ``dest``. Our token goes only to NemoVideo's own origin, never a CDN."""
        return _save(self.open_url(url), Path(dest))

    def open_render(self, render_id: str, *, profile: ProfileArg = None) -> ByteStream:
        """The render's MP4 from the download endpoint, as an open stream of chunks (close it, or use ``with``)."""
        prof = self._profile(profile)
        path = PATH_RENDER_DOWNLOAD.format(rid=_seg(render_id))
        return self._authed(lambda token: self._open(path, prof, token, RenderNotFound, None))

    def open_url(self, url: str, *, guard: Callable[[str], object] | None = None) -> ByteStream:
        """A render's output URL as an open stream of chunks. Our token goes only to NemoVideo's own origin.
        ``guard(url)`` (the outbound-URL check) is called on the URL and on every redirect it leads to."""
        if _origin(url) == _origin(self.base_url):
            return self._authed(lambda token: self._open(url, self.profile, token, None, None))
        return self._open(url, self.profile, None, None, guard)

    def _open(
        self,
        url: str,
        profile: SkillProfile,
        token: str | None,
        not_found: type[NemoError] | None,
        guard: Callable[[str], object] | None,
    ) -> ByteStream:
        headers = self._headers(profile, token) if token else {}
        shown = urlsplit(url).path or url  # no query string: it may hold a signature
        started = time.perf_counter()
        try:
            resp = self._get_following(url, headers, guard)
        except httpx.HTTPError as exc:
            _log_request("GET", shown, type(exc).__name__, started)
            raise _transport_error("GET", shown, exc) from exc
        if resp.status_code == 200:
            return ByteStream(resp, shown, started)
        try:
            resp.read()
            self._reply(resp, token=token, profile=profile, not_found=not_found)
            raise ProtocolError(f"download answered HTTP {resp.status_code}", http_status=resp.status_code)
        except httpx.HTTPError as exc:
            raise _transport_error("GET", shown, exc) from exc
        finally:
            resp.close()
            _log_request("GET", shown, resp.status_code, started)

    def _get_following(
        self, url: str, headers: dict[str, str], guard: Callable[[str], object] | None
    ) -> httpx.Response:
        """GET ``url`` as a stream; with a ``guard``, redirects are followed here, each hop checked first."""
        for _ in range(MAX_REDIRECTS + 1):
            if guard is not None:
                guard(url)
            request = self._http.build_request("GET", url, headers=headers)
            resp = self._http.send(request, stream=True, follow_redirects=guard is None)
            if guard is None or not resp.is_redirect:
                return resp
            resp.close()
            url = str(resp.url.join(resp.headers.get("location", "")))
        raise ProtocolError(f"download: more than {MAX_REDIRECTS} redirects")


class ByteStream:
    """An open download: iterate it for the body in chunks (transport errors become ``UpstreamConnectionError``);
    closing it releases the connection. Nothing is buffered beyond one chunk."""

    def __init__(self, response: httpx.Response, shown: str, started: float) -> None:
        self.response = response
        self._shown = shown
        self._started = started

    @property
    def content_length(self) -> int | None:
        value = self.response.headers.get("content-length", "")
        return int(value) if value.isdigit() else None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.response.iter_bytes(DOWNLOAD_CHUNK)
        except httpx.HTTPError as exc:
            raise _transport_error("GET", self._shown, exc) from exc

    def close(self) -> None:
        if not self.response.is_closed:
            self.response.close()
            _log_request("GET", self._shown, self.response.status_code, self._started)

    def __enter__(self) -> ByteStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _save(stream: ByteStream, dest: Path) -> Path:
    part = dest.with_name(dest.name + ".part")
    try:
        with stream:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with part.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
        os.replace(part, dest)
        return dest
    finally:
        part.unlink(missing_ok=True)


def message_body(session_id: str, text: str) -> dict[str, Any]:
    return {"app_name": APP, "user_id": "me", "session_id": session_id, "new_message": {"parts": [{"text": text}]}}


def mark_sent(error: NemoError, began: bool, cause: BaseException | None = None) -> NemoError:
    """Say on a message's error whether the upstream took the message: an answer without a stream, or no
    connection at all, is a refusal; a break mid-stream is a send; a break before any answer nobody can tell."""
    if isinstance(cause, NOT_SENT_ERRORS):
        error.sent = False
    elif error.sent is None:
        error.sent = not began if not isinstance(error, UpstreamConnectionError) else (True if began else None)
    return error


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _short_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    return str(body.get("message") or body.get("msg") or body) if isinstance(body, dict) else str(body)[:200]


def _transport_error(method: str, path: str, exc: httpx.HTTPError) -> NemoError:
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ProtocolError(f"{method} {path}: bad URL ({exc})")
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    return UpstreamConnectionError(f"{method} {path}: {kind} ({type(exc).__name__}: {exc})")


def _log_request(
    method: str, path: str, status: int | str, started: float, clock: Callable[[], float] = time.perf_counter
) -> None:
    log.debug("nemo %s %s -> %s in %.0f ms", method, path, status, (clock() - started) * 1000)

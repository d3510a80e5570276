"""AsyncNemoClient: the two calls reelmill makes by the thousand at once, on asyncio: a message's event stream
(``/run_sse``) and a render's status.

Everything but the I/O comes from the sync ``NemoClient`` it wraps: URLs, headers, bodies, the token provider,
reply parsing, the error tree, and the stream reading (``StreamFold`` in stream_reader.py). One implementation of
the protocol; two ways to wait for bytes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
import time
from typing import Any

import httpx

from shared.nemo.client import (
    PATH_RENDER_ONE,
    PATH_RUN_SSE,
    NemoClient,
    ProfileArg,
    _log_request,
    _seg,
    _transport_error,
    mark_sent,
    message_body,
)
from shared.nemo.errors import NemoError, RenderNotFound, TokenInvalid
from shared.nemo.profiles import SkillProfile
from shared.nemo.render_status import parse_render_status
from shared.nemo.stream_reader import EventCallback, aread_event_stream, is_event_stream
from shared.nemo.wire import RenderStatus, StreamResult

# httpcore scans a whole pool at every request and every response's end, and its scan is quadratic in the pool's
# idle connections (it counts them once per idle connection): many small pools keep that cheap.
CONNECTIONS_PER_POOL = 64
# httpcore tries `import sniffio` for every lock and event it sets up; sniffio is not installed, and a failed import
# searches the whole sys.path again each time. Recorded as absent, the import fails at once (httpcore then takes
# asyncio, as it did).
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[assignment]


class AsyncNemoClient:
    def __init__(self, sync: NemoClient, *, max_connections: int = 10_000) -> None:
        self.sync = sync
        pools = max(1, max_connections // CONNECTIONS_PER_POOL)
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_POOL, max_keepalive_connections=CONNECTIONS_PER_POOL)
        tls = httpx.create_ssl_context()
        self._pools = [
            httpx.AsyncClient(
                base_url=sync.base_url,
                timeout=httpx.Timeout(sync.timeout_s),
                limits=limits,
                verify=tls,
                headers={"User-Agent": "reelmill-nemo-client/0.1"},
            )
            for _ in range(pools)
        ]
        self._next = itertools.cycle(range(pools))

    @property
    def _http(self) -> httpx.AsyncClient:
        return self._pools[next(self._next)]

    async def aclose(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools))

    async def _authed(self, call: Any) -> Any:
        """``await call(token)``; after ``TokenInvalid`` once more with a refreshed token."""
        tokens = self.sync.tokens
        token = await asyncio.to_thread(self.sync._token)
        try:
            return await call(token)
        except TokenInvalid as exc:
            if tokens is None or not exc.retryable:
                raise
            fresh = await asyncio.to_thread(tokens.refresh, token)
        return await call(fresh)

    async def send_message(
        self,
        session_id: str,
        text: str,
        *,
        profile: ProfileArg = None,
        on_event: EventCallback | None = None,
        max_s: float = 900.0,
        idle_s: float = 180.0,
        paced: bool = False,
        requested: list[bool] | None = None,
    ) -> StreamResult:
        """``NemoClient.send_message``, awaited. ``paced``: the caller already took this send's place in the pace
        (before it recorded the send as begun), so its first request is not held back again. ``requested`` gets an
        item once a request may have left: while it is empty, nothing was sent."""
        prof = self.sync._profile(profile)
        body = message_body(session_id, text)
        owed = [not paced]

        def once(token: str) -> Any:
            pace, owed[0] = owed[0], True  # a retry with a fresh token is a call of its own
            return self._stream_once(token, prof, body, on_event, max_s, idle_s, pace=pace, requested=requested)

        return await self._authed(once)

    async def _stream_once(
        self,
        token: str,
        profile: SkillProfile,
        body: dict[str, Any],
        on_event: EventCallback | None,
        max_s: float,
        idle_s: float,
        *,
        pace: bool = True,
        requested: list[bool] | None = None,
    ) -> StreamResult:
        started = time.monotonic()
        status: int | str = "error"
        began = False
        request = self.sync.stream_request(token, profile, idle_s, max_s)
        if pace:
            await asyncio.to_thread(self.sync.pace_before, "stream")
        if requested is not None:
            requested.append(True)  # from here on the request may be on the wire: its fate is unknown if cut
        try:
            async with self._http.stream("POST", PATH_RUN_SSE, json=body, **request) as resp:
                status, began = resp.status_code, True
                await asyncio.to_thread(self.sync.pace_after, "stream", resp)
                if not is_event_stream(resp):
                    await resp.aread()
                    self.sync.refused_stream(resp, token, profile)
                result = await aread_event_stream(resp, started=started, max_s=max_s, on_event=on_event)
        except NemoError as exc:
            raise mark_sent(exc, began) from None
        except httpx.HTTPError as exc:
            status = type(exc).__name__
            raise mark_sent(_transport_error("POST", PATH_RUN_SSE, exc), began, exc) from exc
        finally:
            _log_request("POST", PATH_RUN_SSE, status, started, clock=time.monotonic)
        return self.sync.stream_done(result, token)

    async def get_render(self, render_id: str, *, profile: ProfileArg = None) -> RenderStatus:
        prof = self.sync._profile(profile)
        path = PATH_RENDER_ONE.format(rid=_seg(render_id))

        async def call(token: str) -> RenderStatus:
            await asyncio.to_thread(self.sync.pace_before, "call")
            started = time.perf_counter()
            status: int | str = "error"
            try:
                resp = await self._http.get(path, headers=self.sync._headers(prof, token))
                status = resp.status_code
                await asyncio.to_thread(self.sync.pace_after, "call", resp)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
                raise _transport_error("GET", path, exc) from exc
            finally:
                _log_request("GET", path, status, started)
            body = self.sync._reply(resp, token=token, profile=prof, not_found=RenderNotFound)
            return parse_render_status(body)

        return await self._authed(call)

"""Reading one open ``/run_sse`` response to its end, the cap, or silence: once, for the sync and the async client.

``StreamFold`` holds everything about reading a stream except the I/O: the SSE decoder (httpx-sse's line
splitter, see sse.py), the collector, the cap, and how each way of ending maps to a ``StreamResult`` or an error.
``read_event_stream`` (sync) and ``aread_event_stream`` (asyncio) only differ in how they pull the next chunk.

The socket read timeout is ``min(idle_s, max_s)``: a read that times out means no byte for that long
("idle", or "cap" once ``max_s`` has passed). The cap is also checked after every chunk, so a stream that
keeps sending heartbeats ends on time; one that falls silent near the cap ends at most one read timeout late.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from shared.nemo.errors import UpstreamConnectionError
from shared.nemo.sse import EventStreamDecoder, StreamCollector, StreamEvent
from shared.nemo.wire import StreamResult

EventCallback = Callable[[StreamEvent], None]


def is_event_stream(resp: httpx.Response) -> bool:
    return resp.headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


class StreamFold:
    """Folds the chunks of one event stream into a ``StreamResult``."""

    def __init__(self, *, started: float, max_s: float, on_event: EventCallback | None = None) -> None:
        self.started = started
        self.max_s = max_s
        self.on_event = on_event
        self.decoder = EventStreamDecoder()
        self.collector = StreamCollector()

    def feed(self, chunk: str) -> bool:
        """Take one chunk; True once the cap has passed (stop reading)."""
        self._emit(self.decoder.feed(chunk))
        return self.elapsed() >= self.max_s

    def closed(self) -> StreamResult:
        """The upstream closed the stream: the end of the message."""
        self._emit(self.decoder.flush())
        return self.result("closed")

    def capped(self) -> StreamResult:
        return self.result("cap")

    def timed_out(self) -> StreamResult:
        """No byte for the read timeout: silence (or the cap, if it has passed meanwhile)."""
        return self.result("cap" if self.elapsed() >= self.max_s else "idle")

    def dropped(self, exc: Exception) -> UpstreamConnectionError:
        """The connection broke before the stream closed: the error to raise, with what was read."""
        partial = self.result("dropped")
        error = UpstreamConnectionError(
            f"the event stream dropped before it closed ({type(exc).__name__}) after {partial.events} events",
            partial=partial,
        )
        error.sent = True
        return error

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def result(self, ended: str) -> StreamResult:
        return self.collector.result(ended, self.elapsed())

    def _emit(self, events: list[StreamEvent]) -> None:
        for event in events:
            self.collector.feed(event)
            if self.on_event is not None:
                self.on_event(event)


def read_event_stream(
    resp: httpx.Response, *, started: float, max_s: float, on_event: EventCallback | None = None
) -> StreamResult:
    """Fold the stream into a ``StreamResult``; a connection lost mid-stream raises ``UpstreamConnectionError``
    whose ``partial`` holds what was read (``ended="dropped"``)."""
    fold = StreamFold(started=started, max_s=max_s, on_event=on_event)
    try:
        for chunk in resp.iter_text():
            if fold.feed(chunk):
                return fold.capped()
        return fold.closed()
    except httpx.ReadTimeout:
        return fold.timed_out()
    except httpx.TransportError as exc:
        raise fold.dropped(exc) from exc


async def aread_event_stream(
    resp: httpx.Response, *, started: float, max_s: float, on_event: EventCallback | None = None
) -> StreamResult:
    """``read_event_stream`` for an ``httpx.AsyncClient`` response."""
    fold = StreamFold(started=started, max_s=max_s, on_event=on_event)
    try:
        async for chunk in resp.aiter_text():
            if fold.feed(chunk):
                return fold.capped()
        return fold.closed()
    except httpx.ReadTimeout:
        return fold.timed_out()
    except httpx.TransportError as exc:
        raise fold.dropped(exc) from exc

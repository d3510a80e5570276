"""Reading one open ``/run_sse`` response to its end, the cap, or silence.

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


def read_event_stream(
    resp: httpx.Response, *, started: float, max_s: float, on_event: EventCallback | None = None
) -> StreamResult:
    """Fold the stream into a ``StreamResult``; a connection lost mid-stream raises
    ``UpstreamConnectionError`` whose ``partial`` holds what was read (``ended="dropped"``)."""
    decoder = EventStreamDecoder()
    collector = StreamCollector()

    def emit(events: list[StreamEvent]) -> None:
        for event in events:
            collector.feed(event)
            if on_event is not None:
                on_event(event)

    ended = "closed"
    try:
        for chunk in resp.iter_text():
            emit(decoder.feed(chunk))
            if time.monotonic() - started >= max_s:
                ended = "cap"
                break
        else:
            emit(decoder.flush())
    except httpx.ReadTimeout:
        ended = "cap" if time.monotonic() - started >= max_s else "idle"
    except httpx.TransportError as exc:
        partial = collector.result("dropped", time.monotonic() - started)
        raise UpstreamConnectionError(
            f"the event stream dropped before it closed ({type(exc).__name__}) after {partial.events} events",
            partial=partial,
        ) from exc
    return collector.result(ended, time.monotonic() - started)

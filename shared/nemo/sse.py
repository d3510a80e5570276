"""Reading ``/run_sse``: text chunks -> SSE lines -> ``StreamEvent`` s -> one ``StreamResult``. Pure, no I/O.

Accepted forms (UPSTREAM.md "The SSE stream"):
- ADK camelCase events; each part of ``content.parts`` (text / functionCall / functionResponse) is one event;
- the flat legacy form ``{"type":"text"|"tool_call"|"tool_result"|"heartbeat", ...}``;
- heartbeats: ``: ping`` comment lines (any comment), empty ``data:`` lines, ``{"type":"heartbeat"}``;
- errors: author "system" text "Error: ...", a bare ``{"error": ...}``, ``errorCode``/``errorMessage``.
A "I encountered a temporary issue" text is noise: kept out of the texts, counted apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# httpx-sse's public EventSource drops comment lines, and ``: ping`` comments are heartbeats we must count,
# so we use its SSE-exact line splitter (only \r\n, \r, \n end a line) and read the fields ourselves.
from httpx_sse._decoders import SSELineDecoder

from shared.nemo.errors import NemoError, StreamFailed, error_for_code
from shared.nemo.wire import StreamResult, ToolCall, ToolResult

KINDS = ("text", "tool_call", "tool_result", "heartbeat", "error", "other")
_HEARTBEAT_TYPES = frozenset({"heartbeat", "ping", "keepalive", "keep-alive", "keep_alive"})
_FLAT_TYPES = frozenset({"text", "tool_call", "tool_result", "error"})
_NOISE = re.compile(r"i\s+(?:have\s+)?encountered\s+a\s+temporary\s+issue", re.IGNORECASE)
_SYSTEM_ERROR = re.compile(r"^\s*error\s*[:：]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class StreamEvent:
    kind: str  # one of KINDS
    text: str | None = None
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None
    error: NemoError | None = None
    raw: Any = None
    author: str | None = None
    partial: bool = False  # an ADK streaming chunk; the final event repeats the whole text

    @property
    def is_noise(self) -> bool:
        return self.kind == "text" and bool(self.text) and split_noise(self.text or "")[0] == ""


def split_noise(text: str) -> tuple[str, str | None]:
    """``(text without a trailing "temporary issue" remark, that remark or None)``."""
    match = _NOISE.search(text)
    if not match:
        return text, None
    return text[: match.start()].rstrip(), text[match.start() :].strip()


def stream_error(message: str, code: Any = None) -> NemoError:
    """An in-stream error: a documented numeric code maps to its class, anything else is ``StreamFailed``."""
    number = code if isinstance(code, int) and not isinstance(code, bool) else None
    if isinstance(code, str) and code.strip().isdigit():
        number = int(code)
    known = error_for_code(number, message) if number else None
    if known:
        return known
    label = f"{code}: " if code not in (None, "") and number is None else ""
    detail = f"{label}{message}".strip() or "unknown stream error"
    return StreamFailed(detail, code=number, user_message=f"NemoVideo's agent reported an error: {detail[:200]}")


def _heartbeat(raw: Any) -> StreamEvent:
    return StreamEvent("heartbeat", raw=raw)


def _flat_event(obj: Mapping[str, Any]) -> StreamEvent:
    kind = obj["type"]
    if kind == "text":
        text = obj.get("content", obj.get("text"))
        return StreamEvent("text", text=str(text) if text is not None else "", raw=obj)
    if kind == "tool_call":
        call = ToolCall(obj.get("id"), str(obj.get("name", "")), dict(obj.get("args") or {}))
        return StreamEvent("tool_call", tool_call=call, raw=obj)
    if kind == "tool_result":
        result = obj.get("result", obj.get("response"))
        return StreamEvent(
            "tool_result", tool_result=ToolResult(obj.get("id"), str(obj.get("name", "")), result), raw=obj
        )
    message = obj.get("message") or obj.get("content") or obj.get("error") or ""
    return StreamEvent("error", error=stream_error(str(message), obj.get("code")), raw=obj)


def _part_event(part: Any, obj: Mapping[str, Any]) -> StreamEvent:
    author = obj.get("author")
    partial = bool(obj.get("partial"))
    if not isinstance(part, Mapping):
        return StreamEvent("other", raw=obj, author=author)
    if isinstance(part.get("text"), str) and not part.get("thought"):
        text = part["text"]
        if author == "system" and _SYSTEM_ERROR.match(text):
            return StreamEvent(
                "error", error=stream_error(_SYSTEM_ERROR.sub("", text, count=1)), raw=obj, author=author
            )
        return StreamEvent("text", text=text, raw=obj, author=author, partial=partial)
    if isinstance(part.get("functionCall"), Mapping):
        fc = part["functionCall"]
        call = ToolCall(fc.get("id"), str(fc.get("name", "")), dict(fc.get("args") or {}))
        return StreamEvent("tool_call", tool_call=call, raw=obj, author=author)
    if isinstance(part.get("functionResponse"), Mapping):
        fr = part["functionResponse"]
        result = ToolResult(fr.get("id"), str(fr.get("name", "")), fr.get("response"))
        return StreamEvent("tool_result", tool_result=result, raw=obj, author=author)
    return StreamEvent("other", raw=obj, author=author)


def _event_error(obj: Mapping[str, Any]) -> NemoError | None:
    error = obj.get("error")
    if isinstance(error, str) and error:
        return stream_error(error)
    if isinstance(error, Mapping):
        return stream_error(str(error.get("message") or error.get("msg") or ""), error.get("code"))
    if obj.get("errorCode") or obj.get("errorMessage"):
        return stream_error(str(obj.get("errorMessage") or ""), obj.get("errorCode"))
    return None


def parse_events(data: str) -> list[StreamEvent]:
    """Every event in one SSE ``data`` payload (an ADK event with N parts gives N events)."""
    if not data.strip():
        return [_heartbeat(data)]
    try:
        obj = json.loads(data)
    except ValueError:
        return [StreamEvent("other", raw=data)]
    if not isinstance(obj, Mapping):
        return [StreamEvent("other", raw=obj)]
    kind = obj.get("type")
    if isinstance(kind, str) and kind.lower() in _HEARTBEAT_TYPES:
        return [_heartbeat(obj)]
    if kind in _FLAT_TYPES and not isinstance(obj.get("content"), Mapping):
        return [_flat_event(obj)]
    content = obj.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    events = [_part_event(part, obj) for part in parts] if isinstance(parts, list) else []
    error = _event_error(obj)
    if error is not None:
        events.append(StreamEvent("error", error=error, raw=obj, author=obj.get("author")))
    return events or [StreamEvent("other", raw=obj, author=obj.get("author"))]


def parse_event(data: str) -> StreamEvent:
    """The first event of ``data``; use ``parse_events`` when an event may carry several parts."""
    return parse_events(data)[0]


class EventStreamDecoder:
    """Feeds decoded text chunks of a ``text/event-stream`` body; returns the events completed so far."""

    def __init__(self) -> None:
        self._lines = SSELineDecoder()
        self._data: list[str] = []  # the event's data lines so far

    def feed(self, chunk: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for line in self._lines.decode(chunk):
            events.extend(self._line(line))
        return events

    def flush(self) -> list[StreamEvent]:
        """At the end of the body: the last line and an event not followed by a blank line."""
        events: list[StreamEvent] = []
        for line in [*self._lines.flush(), ""]:
            events.extend(self._line(line))
        return events

    def _line(self, line: str) -> list[StreamEvent]:
        if line.startswith(":"):
            return [_heartbeat(line)]
        if not line:  # dispatch; per the SSE spec an event without a data line is no event
            data, self._data = self._data, []
            return parse_events("\n".join(data)) if data else []
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []  # event:, id:, retry: carry nothing reelmill uses


class StreamCollector:
    """Folds events into a ``StreamResult``. Partial (streaming) text chunks count only if no final text came."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.noise: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.tool_results: list[ToolResult] = []
        self.heartbeats = 0
        self.events = 0
        self.error: NemoError | None = None
        self._partials: list[str] = []

    def feed(self, event: StreamEvent) -> None:
        self.events += 1
        if event.kind == "heartbeat":
            self.heartbeats += 1
        elif event.kind == "text":
            self._text(event)
        elif event.kind == "tool_call" and event.tool_call:
            self.tool_calls.append(event.tool_call)
        elif event.kind == "tool_result" and event.tool_result:
            self.tool_results.append(event.tool_result)
        elif event.kind == "error" and self.error is None:
            self.error = event.error

    def _text(self, event: StreamEvent) -> None:
        if event.partial:
            self._partials.append(event.text or "")
            return
        self._partials.clear()
        self._add_text(event.text or "")

    def _add_text(self, text: str) -> None:
        clean, noise = split_noise(text)
        if noise:
            self.noise.append(noise)
        if clean.strip():
            self.texts.append(clean)

    def result(self, ended: str, duration_s: float) -> StreamResult:
        if self._partials:
            self._add_text("".join(self._partials))
            self._partials.clear()
        return StreamResult(
            texts=list(self.texts),
            tool_calls=list(self.tool_calls),
            tool_results=list(self.tool_results),
            heartbeats=self.heartbeats,
            events=self.events,
            silent=not self.texts,
            error=self.error,
            ended=ended,
            duration_s=duration_s,
            noise=list(self.noise),
        )

"""The message stream on the wire: ADK's ``data: <json>\\n\\n`` frames, the flat legacy encoding, the three
in-stream error forms, and the ASGI response that writes a run's frames (the heartbeats are in ``forms.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.nemo_sim.accounting import mark_dropped

AGENT = "nemo_agent"
Frames = asyncio.Queue[bytes | None]  # None ends the stream


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def adk_event(
    invocation_id: str, parts: list[dict[str, Any]] | None, *, author: str = AGENT, finish: bool = False
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "invocationId": invocation_id,
        "author": author,
        "timestamp": time.time(),
    }
    if parts is not None:
        event["content"] = {"role": "model", "parts": parts}
    event.update(
        actions={"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}},
        longRunningToolIds=[],
        partial=False,
    )
    if finish:
        event["finishReason"] = "STOP"
    return event


class EventEncoder:
    """Turns the agent's events into frames, in ADK's form or the flat legacy one."""

    def __init__(self, invocation_id: str, legacy: bool) -> None:
        self.invocation_id = invocation_id
        self.legacy = legacy

    def text(self, text: str, finish: bool = False) -> bytes:
        if self.legacy:
            return frame({"type": "text", "content": text})
        return frame(adk_event(self.invocation_id, [{"text": text}], finish=finish))

    def call(self, call_id: str, name: str, args: dict[str, Any], finish: bool = False) -> bytes:
        if self.legacy:
            return frame({"type": "tool_call", "name": name, "args": args})
        part = {"functionCall": {"id": call_id, "name": name, "args": args}}
        return frame(adk_event(self.invocation_id, [part], finish=finish))

    def result(self, call_id: str, name: str, response: dict[str, Any], finish: bool = False) -> bytes:
        if self.legacy:
            return frame({"type": "tool_result", "name": name, "result": response})
        part = {"functionResponse": {"id": call_id, "name": name, "response": response}}
        return frame(adk_event(self.invocation_id, [part], finish=finish))

    def error(self, form: int, message: str) -> bytes:
        """One of the three documented error forms (the same in both encodings)."""
        if form % 3 == 0:
            return frame(adk_event(self.invocation_id, [{"text": f"Error: {message}"}], author="system"))
        if form % 3 == 1:
            return frame({"error": message})
        event = adk_event(self.invocation_id, None)
        event.update(errorCode="INTERNAL_ERROR", errorMessage=message)
        return frame(event)


class SSEResponse(Response):
    """Writes a run's frames as they come. Leaving the stream (client gone, or a ``drop`` fault) never
    stops the run itself; a ``drop`` ends the response unfinished, so the server cuts the connection
    without the final chunk and the client sees a transport error, not a clean end.
    """

    def __init__(self, frames: Frames, drop_after: int | None, on_close: Callable[[], None]) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self.frames = frames
        self.drop_after = drop_after
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(_end_on_disconnect(receive, self.frames))
        sent = 0
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while (chunk := await self.frames.get()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += 1
                if self.drop_after is not None and sent >= self.drop_after:
                    break
            if self.drop_after is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                mark_dropped(scope)
        finally:
            watcher.cancel()
            self.on_close()


async def _end_on_disconnect(receive: Receive, frames: Frames) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    frames.put_nowait(None)

"""The SSE message: one instruction, sent once.

Before sending, the turn is marked `sending` with the draft's fingerprint. If the worker dies mid-stream, the next
attempt reads the session state first: a changed draft means the edit landed and is not sent again.
"""

from __future__ import annotations

import logging
import time

from services.worker.context import StepContext
from services.worker.outcome import Outcome
from shared.nemo.draft import draft_fingerprint
from shared.nemo.errors import UpstreamConnectionError
from shared.nemo.gui import translate
from shared.nemo.sse import StreamEvent
from shared.nemo.wire import StreamResult
from shared.tables import JobStatus, MessageState, Stage

log = logging.getLogger(__name__)


class StreamCanceled(Exception):
    """The client canceled the job while its stream ran."""


def message(ctx: StepContext) -> Outcome:
    turn = ctx.turn
    status = JobStatus.processing if ctx.job.status != JobStatus.processing.value else None
    if turn.message_state in (MessageState.sent.value, MessageState.skipped.value):
        return Outcome.advance(status=status)
    if turn.message_state == MessageState.sending.value and _landed(ctx):
        log.info("message already landed before a crash; not sending it again")
        return Outcome.advance(status=status, turn={"message_state": MessageState.sent.value})
    before = turn.draft_before or draft_fingerprint(_previous_draft(ctx))
    ctx.checkpoint(
        message_state=MessageState.sending.value, draft_before=before, message_attempts=turn.message_attempts + 1
    )
    watcher = _Watcher(ctx)
    try:
        result = ctx.client.send_message(
            ctx.job.session_id or "",
            turn.instruction,
            profile=ctx.job.profile,
            on_event=watcher,
            max_s=ctx.settings.sse_max_s,
            idle_s=ctx.settings.sse_idle_s,
        )
    except StreamCanceled:
        return Outcome.canceled()
    except UpstreamConnectionError as exc:
        if exc.partial is not None:
            log.info("stream dropped after %d events", exc.partial.events)
        raise
    if result.error is not None:
        raise result.error
    return Outcome.advance(status=status, turn=_turn_fields(result), note=_describe(result))


def _previous_draft(ctx: StepContext) -> dict | None:
    earlier = [t for t in ctx.turns[: ctx.job.turn_index] if t.draft]
    return earlier[-1].draft if earlier else None


def _landed(ctx: StepContext) -> bool:
    state = ctx.client.get_state(ctx.job.session_id or "", profile=ctx.job.profile)
    return draft_fingerprint(state.draft) != ctx.turn.draft_before


def _turn_fields(result: StreamResult) -> dict:
    return {
        "message_state": MessageState.sent.value,
        "messages": [translate(t).text for t in result.texts],
        "tool_calls": [c.name for c in result.tool_calls],
        "heartbeats": result.heartbeats,
        "silent": result.silent,
    }


def _describe(result: StreamResult) -> str:
    shape = "silent" if result.silent else f"{len(result.texts)} texts"
    return f"stream {result.ended}: {shape}, {len(result.tool_calls)} tool calls, {result.heartbeats} heartbeats"


class _Watcher:
    """Called for every stream event: relays texts as live events, says "still working" every couple of
    minutes of heartbeats, and stops the stream when the client cancels."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.last_said = time.monotonic()

    def __call__(self, event: StreamEvent) -> None:
        if self.ctx.cancel_requested():
            raise StreamCanceled()
        now = time.monotonic()
        if event.kind == "text" and event.text and not event.partial and not event.is_noise:
            self.last_said = now
            tr = translate(event.text)
            self.ctx.live("job.message", {"text": tr.text, "actions": [a.kind for a in tr.actions]})
        elif now - self.last_said >= self.ctx.settings.still_working_every_s:
            self.last_said = now
            self.ctx.live("job.still_working", {"text": "Still working...", "stage": Stage.message.value})

"""The SSE message: one instruction, sent once.

The agent works server-side: once NemoVideo has taken a message, its edit runs to the end whether or not anyone
reads the stream, and the same message sent again is a second edit (and a second charge). So:

- Before sending, the turn is marked `sending` with the fingerprint of the session's draft (`draft_before`): the
  one last seen (a new session's is empty), or, when nothing is known (after an upload), read from the state first
  (once: a send sent again after a refusal reuses it; nothing but this turn's message edits the session).
- A send the upstream refused before its event stream began (an HTTP error, a JSON error envelope, no connection)
  was not sent: the turn goes back to `pending` and the retry sends it.
- A send whose fate is unknown (the worker died mid-stream, the connection broke before the first byte or during
  the stream) is never sent again while it may still be running. The step reads the state: a draft that changed
  (every empty form of a draft counts as the same empty draft) and then held still for `edit_settle_s` means the
  edit landed. No change yet: wait, polling with backoff, until the stream's own cap (`sse_max_s`) has passed since
  the send began; only then was the message surely never taken, and it is sent again.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from services.worker.context import StepContext
from services.worker.outcome import Advance, Outcome, RetryAfter
from shared.nemo.draft import draft_fingerprint
from shared.nemo.errors import NemoError, Paced
from shared.nemo.gui import translate
from shared.nemo.sse import StreamEvent
from shared.nemo.wire import StreamResult
from shared.tables import MessageState, Stage
from shared.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)
KEEP_SLOT_WAIT_S = 5.0  # a pace wait up to this long keeps the job's stream slot (see `prepare`)


class StreamCanceled(Exception):
    """The client canceled the job while its stream ran."""


def message(ctx: StepContext) -> Outcome:
    """The whole step, for a worker thread (the streams worker runs the same phases on its event loop)."""
    early = prepare(ctx)
    if early is not None:
        return early
    try:
        result = send(ctx)
    except StreamCanceled:
        return ctx.canceled()
    except NemoError as exc:
        refused(ctx, exc)
        raise
    finally:
        ctx.let_go("streams")
    return conclude(result)


def prepare(ctx: StepContext) -> Outcome | None:
    """Before the send: the outcome when there is nothing to send (or a send of unknown fate to recover), else
    None after marking the turn `sending` with the draft's fingerprint."""
    turn = ctx.turn
    if turn.message_state in (MessageState.sent, MessageState.skipped):
        return Advance()
    if turn.message_state == MessageState.sending:
        return recover(ctx, utcnow())
    no_room = ctx.hold("streams", ctx.settings.lease_s)
    if no_room is not None:
        return no_room
    try:
        # a send refused earlier (or found never to have run) already read this session's draft: reuse it
        before = ctx.job.draft_fp or turn.draft_before or draft_fingerprint(_read_draft(ctx))
        # The send's place in the pace is taken before the send is recorded as begun: a send the pace holds back
        # (Paced) leaves the turn as it was, and a stop in that wait leaves nothing of unknown fate to wait out.
        ctx.client.pace_before("stream")
        ctx.checkpoint(
            message_state=MessageState.sending,
            draft_before=before,
            message_attempts=turn.message_attempts + 1,
            message_sent_at=utcnow(),
        )
    except Paced as exc:
        # A short wait for the call rate keeps the slot: the job comes back within it and finds it held. Given
        # back, the slot would go to the next in the scheduler's line and this job would queue again behind the
        # whole line, its tenant's turn spent for nothing (a round's grants all call at once and some must wait).
        if exc.retry_after is None or exc.retry_after > KEEP_SLOT_WAIT_S:
            ctx.let_go("streams")
        raise
    except BaseException:
        ctx.let_go("streams")  # the slot goes back at once, not when its time-to-live runs out
        raise
    return None


def not_sent(ctx: StepContext) -> None:
    """A send stopped before its request left (the worker shutting down): not an attempt, nothing of unknown fate."""
    if ctx.turn.message_state == MessageState.sending:
        attempts = max(ctx.turn.message_attempts - 1, 0)
        ctx.checkpoint(message_state=MessageState.pending, message_attempts=attempts)


def refused(ctx: StepContext, exc: NemoError) -> None:
    """A send that failed: when the upstream refused it before its stream began it was not sent, and the retry
    sends it; otherwise the turn stays `sending` and the retry recovers."""
    if isinstance(exc, Paced):  # the pace held it back before any request: not an attempt at all
        ctx.checkpoint(message_state=MessageState.pending, message_attempts=max(ctx.turn.message_attempts - 1, 0))
    elif exc.sent is False:
        ctx.checkpoint(message_state=MessageState.pending)


def conclude(result: StreamResult) -> Outcome:
    if result.error is not None:
        raise result.error  # an error inside a stream that began: the edit may run on; the retry recovers
    return Advance(turn=sent_fields(result), job={"draft_fp": None}, note=describe(result))


def send(ctx: StepContext) -> StreamResult:
    return ctx.client.send_message(
        ctx.job.session_id or "",
        ctx.turn.instruction,
        profile=ctx.job.profile,
        on_event=Watcher(ctx),
        max_s=ctx.settings.sse_max_s,
        idle_s=ctx.settings.sse_idle_s,
    )


def recover(ctx: StepContext, now: datetime) -> Outcome:
    """A send began and how it ended is unknown: find out from the draft, never by sending again early."""
    seen = draft_fingerprint(_read_draft(ctx))
    if seen != ctx.turn.draft_before:
        if seen == ctx.job.draft_fp:
            log.info("the message landed before the crash (the draft changed and held still); not sending it again")
            return Advance(turn={"message_state": MessageState.sent}, note="message landed")
        return RetryAfter(  # changed since the last look: the edit may still be running
            ctx.settings.edit_settle_s,
            "the edit is landing; waiting for the draft to hold still",
            spend=False,
            job={"draft_fp": seen},
        )
    started = as_utc(ctx.turn.message_sent_at) or now
    elapsed = (now - started).total_seconds()
    if elapsed < ctx.settings.sse_max_s:
        delay = max(ctx.settings.edit_settle_s, min(60.0, elapsed / 4))
        return RetryAfter(delay, "waiting for an edit that may still be running upstream", spend=False)
    log.info("no edit within the stream's cap after the send began: the message never ran; sending it again")
    return RetryAfter(
        0.0, "the message never ran: sending it again", spend=False, turn={"message_state": MessageState.pending}
    )


def _read_draft(ctx: StepContext) -> object:
    return ctx.client.get_state(ctx.job.session_id or "", profile=ctx.job.profile).draft


def sent_fields(result: StreamResult) -> dict:
    return {
        "message_state": MessageState.sent,
        "messages": [translate(t).text for t in result.texts],
        "tool_calls": [c.name for c in result.tool_calls],
        "heartbeats": result.heartbeats,
        "silent": result.silent,
    }


def describe(result: StreamResult) -> str:
    shape = "silent" if result.silent else f"{len(result.texts)} texts"
    return f"stream {result.ended}: {shape}, {len(result.tool_calls)} tool calls, {result.heartbeats} heartbeats"


class Watcher:
    """Called for every stream event: relays texts as live events, says "still working" every couple of
    minutes without one, and stops the stream when the client cancels."""

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

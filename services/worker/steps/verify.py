"""verify: read the session state after a message (the draft to render, the timeline summary, and after a silent
stream whether and what changed); also answers the `status` intent. credits: answers the `credits` intent."""

from __future__ import annotations

from services.worker.context import StepContext
from services.worker.outcome import Advance, Fail, Outcome, RetryAfter
from shared.nemo.draft import draft_fingerprint, is_export_ready, timeline_summary

EMPTY_DRAFT_RETRIES = 3  # looks at a draft that is not ready yet, `edit_settle_s` apart and doubling


def verify(ctx: StepContext) -> Outcome:
    state = ctx.client.get_state(ctx.job.session_id or "", profile=ctx.job.profile)
    draft, turn = state.draft, ctx.turn
    seen = {"draft_fp": draft_fingerprint(draft)}
    messages = list(turn.messages or [])
    if turn.intent == "state":
        summary = timeline_summary(draft) if draft else "The timeline is empty."
        return Advance(turn={"draft": draft, "timeline": summary, "messages": [*messages, summary]}, job=seen)
    if not is_export_ready(draft):
        if ctx.job.attempts < EMPTY_DRAFT_RETRIES:
            return _look_again(ctx, "the draft has no segment yet", seen)
        return Fail("empty_draft", "NemoVideo produced no timeline for this instruction; try a more specific one")
    # A stream that said nothing (about 30% of edits): the state is the only word on the edit. One that does not
    # show yet is looked at again a few times, as an empty draft is; then the turn goes on, saying so.
    silent = turn.intent == "sse" and (turn.silent or not messages)
    unchanged = silent and turn.draft_before is not None and seen["draft_fp"] == turn.draft_before
    if unchanged and ctx.job.attempts < EMPTY_DRAFT_RETRIES:
        return _look_again(ctx, "a silent stream's edit does not show in the state yet", seen)
    summary = timeline_summary(draft)
    if unchanged:
        messages.append(f"NemoVideo reported no change to the timeline. {summary}")
    elif silent:
        messages.append(f"The edit was applied. {summary}")
    return Advance(turn={"draft": draft, "timeline": summary, "messages": messages}, job=seen, note=summary)


def _look_again(ctx: StepContext, reason: str, seen: dict[str, str]) -> RetryAfter:
    """Read the state again after `edit_settle_s`, doubling with each look."""
    return RetryAfter(ctx.settings.edit_settle_s * 2**ctx.job.attempts, reason, job=seen)


def credits(ctx: StepContext) -> Outcome:
    balance = ctx.client.get_credits(profile=ctx.job.profile)
    text = f"Credits: {balance.available} available, {balance.frozen} frozen, {balance.total} in total."
    return Advance(turn={"messages": [*(ctx.turn.messages or []), text]}, note=text)

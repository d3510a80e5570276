"""render_submit -> render_poll.

The render id is written before the submit, so a retried submit (after a crash or a lost reply) first asks the
upstream whether that id exists: one render per turn at a time, never two. A render that failed upstream is
submitted again under a new id (an export is free and its draft is unchanged), `REELMILL_RENDER_RETRIES` times.
"""

from __future__ import annotations

import logging
import time

from services.worker.context import StepContext
from services.worker.outcome import Advance, Cancel, Fail, Outcome, Throttle
from shared.domain.pace_view import render_slot_ttl_s
from shared.nemo.errors import DuplicateRenderId, RenderNotFound
from shared.nemo.wire import RenderStatus
from shared.tables import Stage
from shared.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)


def new_render_id(job_id: str, seq: int) -> str:
    return f"render_{int(time.time() * 1000)}_{job_id.removeprefix('job_')[-12:]}_{seq}"


def submit(ctx: StepContext) -> Advance | Throttle:
    turn, job = ctx.turn, ctx.job
    if turn.render_submitted:
        return _poll_next(ctx)
    no_room = ctx.hold("renders", render_slot_ttl_s(ctx.settings))  # held until the render ends
    if no_room is not None:
        return no_room
    render_id = turn.render_id
    if render_id is not None and _exists(ctx, render_id):
        return _poll_next(ctx, turn={"render_submitted": True})
    if render_id is None:
        render_id = new_render_id(job.id, turn.seq)
        ctx.checkpoint(render_id=render_id)
    try:
        status = ctx.client.submit_render(
            render_id,
            job.session_id or "",
            turn.draft or {},
            format=job.output_format,
            quality=job.output_quality,
            profile=job.profile,
        )
    except DuplicateRenderId:
        status = None  # our own earlier submit landed
    fields = {"render_submitted": True, "render_started_at": utcnow()}
    if status is not None:
        fields |= {"render_status": status.status, "render_progress": status.progress}
    return _poll_next(ctx, turn=fields)


def _exists(ctx: StepContext, render_id: str) -> bool:
    try:
        ctx.client.get_render(render_id, profile=ctx.job.profile)
    except RenderNotFound:
        return False
    return True


def _poll_next(ctx: StepContext, turn: dict | None = None) -> Advance:
    return Advance(turn=turn or {}, stage=Stage.render_poll, wait_s=ctx.settings.render_poll_s, note="render submitted")


def poll(ctx: StepContext) -> Outcome:
    return unsubmitted(ctx) or polled(ctx, ctx.client.get_render(ctx.turn.render_id or "", profile=ctx.job.profile))


def unsubmitted(ctx: StepContext) -> Outcome | None:
    """A turn polled with no render on record was never submitted (the submit step records the id before the
    request): submit it, rather than poll an empty id again and again."""
    if ctx.turn.render_id:
        return None
    log.warning("render poll with no render on record: submitting the render")
    return Advance(stage=Stage.render_submit, note="no render on record: submitting it")


def polled(ctx: StepContext, status: RenderStatus) -> Outcome:
    """What a render's status means for the job (the streams worker polls due renders in batches, then asks this)."""
    turn = ctx.turn
    fields = {"render_status": status.status, "render_progress": status.progress}
    if status.status == "completed":
        return Advance(turn=fields | {"output": _output(ctx, status)}, stage=Stage.record, note="render completed")
    if status.status == "failed":
        reason = status.error or "no reason given"
        if turn.renders_failed < ctx.settings.render_retries:  # an export is free: the same draft, a new render id
            log.warning("render %s failed upstream (%s): submitting it again", turn.render_id, reason)
            again = {"render_id": None, "render_submitted": False, "render_started_at": None}
            return Advance(
                turn=fields | again | {"renders_failed": turn.renders_failed + 1},
                stage=Stage.render_submit,
                note=f"the render failed upstream ({reason}): submitting it again",
            )
        tries = turn.renders_failed + 1
        return Fail("render_failed", f"the render failed upstream ({tries} of {tries} tries): {reason}", turn=fields)
    if status.status == "canceled":
        return Cancel(code="render_canceled", message="the render was canceled upstream")
    started = as_utc(turn.render_started_at) or utcnow()
    if (utcnow() - started).total_seconds() > ctx.settings.render_max_s:
        return Fail("render_timeout", f"the render did not finish within {ctx.settings.render_max_s:.0f} s")
    return Advance(
        turn=fields,
        stage=Stage.render_poll,
        wait_s=ctx.settings.render_poll_s,
        note=f"render {status.status} {status.progress}%",
    )


def _output(ctx: StepContext, status: RenderStatus) -> dict:
    return {
        "url": status.output_url,
        "duration": status.duration,
        "size": status.size,
        "format": ctx.job.output_format,
        "render_id": status.id,
    }

"""A message stream on the streams worker's event loop (services/worker/eventloop.py).

The `reelmill.stream` task claims the job in a worker thread and hands it here; it returns at once, so a process
holds thousands of streams without a thread each. The step is the same as in a thread (steps/message.py): its
phases before and after the send run in the loop's database threads, the send itself is awaited with
`AsyncNemoClient`. The job stays owned through its lease, renewed with every other job this process holds; if the
process dies, the lease runs out and the sweeper sends the step again, which recovers the send (never resends it
early). A cancel stops the stream within seconds; a warm shutdown stops every stream and hands the jobs back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from services.worker import retry, runner
from services.worker.context import LeaseLost
from services.worker.outcome import Outcome
from services.worker.steps import message
from shared import metrics
from shared.logs import job_context
from shared.nemo.errors import NemoError
from shared.tables import MessageState, Stage

if TYPE_CHECKING:
    from services.worker.eventloop import LoopHost

log = logging.getLogger(__name__)


class HandedBack(Exception):
    """The process is shutting down: the job goes back to the queue, its send to be recovered by the next worker."""


async def run_stream(step: runner.Step, host: LoopHost) -> None:
    job_id, started = step.ctx.job.id, time.monotonic()
    with job_context(job_id):
        try:
            outcome = await _message(step, host)
        except (HandedBack, LeaseLost):
            await host.db(runner.lease.release, job_id, step.ctx.owner)
            return
        metrics.step_finished(Stage.message.value, time.monotonic() - started)
        await host.events.flush()  # the stream's live events go out before its stage change
        await host.db(runner.apply_and_run, step, outcome)


async def _message(step: runner.Step, host: LoopHost) -> Outcome:
    ctx = step.ctx
    requested: list[bool] = []
    # a send of unknown fate from an earlier attempt is never taken back, only one this attempt began
    ours = ctx.turn.message_state != MessageState.sending
    try:
        # a stop in the middle of prepare must see whether it marked the turn `sending`, to take that back
        early = await host.db_settled(message.prepare, ctx)
        if early is not None:
            return early
        try:
            result = await host.aclient.send_message(
                ctx.job.session_id or "",
                ctx.turn.instruction,
                profile=ctx.job.profile,
                on_event=message.Watcher(ctx),
                max_s=ctx.settings.sse_max_s,
                idle_s=ctx.settings.sse_idle_s,
                paced=True,  # prepare took its place in the pace
                requested=requested,
            )
        except NemoError as exc:
            await host.db(message.refused, ctx, exc)
            raise
        finally:
            await host.db(ctx.let_go, "streams")
        return message.conclude(result)
    except (asyncio.CancelledError, message.StreamCanceled):
        if host.stopping:
            if ours and not requested:  # stopped before the request left: not sent; the next worker sends it
                await host.db(message.not_sent, ctx)
            raise HandedBack() from None
        return ctx.canceled()
    except LeaseLost:
        raise
    except Exception as exc:
        metrics.upstream_error(exc)
        return retry.decide(exc, ctx.job.attempts, Stage.message, ctx.job.sessions_lost)

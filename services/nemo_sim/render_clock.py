"""A render's status, computed lazily from the clock (nothing runs in the background)."""

from __future__ import annotations

from dataclasses import dataclass

from services.nemo_sim.records import Render

PENDING_SHARE = 0.10  # the first 10% of a render's time it is "pending"
SUBMIT_PROGRESS, FAIL_PROGRESS = 5, 90
RENDER_ERRORS = ("GPU node lost during encoding", "compositor crashed", "encoder timeout")


@dataclass(frozen=True)
class RenderStatus:
    status: str  # pending | processing | completed | failed | canceled
    progress: int
    finished_at: float | None  # epoch seconds, once completed or failed

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "canceled")


def _running(render: Render, at: float) -> RenderStatus:
    elapsed, total = at - render.created_at, render.duration_s
    if elapsed >= total:
        done = render.created_at + total
        if render.fails:
            return RenderStatus("failed", FAIL_PROGRESS, done)
        return RenderStatus("completed", 100, done)
    if elapsed < PENDING_SHARE * total:
        return RenderStatus("pending", SUBMIT_PROGRESS, None)
    share = (elapsed - PENDING_SHARE * total) / ((1 - PENDING_SHARE) * total)
    return RenderStatus("processing", min(99, SUBMIT_PROGRESS + 1 + int(94 * share)), None)


def status_of(render: Render, now: float) -> RenderStatus:
    if render.canceled_at is not None:
        return RenderStatus("canceled", _running(render, render.canceled_at).progress, None)
    return _running(render, now)


def error_of(render: Render) -> str:
    return RENDER_ERRORS[sum(render.render_id.encode()) % len(RENDER_ERRORS)]

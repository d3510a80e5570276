"""The fake agent run behind ``/run_sse``: a server-side task, decoupled from the response.

It starts when the message is accepted and always finishes, even if its client leaves: at the first
tool call (``edit_at`` of the way in, 10% by default) it edits the draft; it sends heartbeats while it "works";
unless the run is silent it ends with text full of GUI phrases (and sometimes the upstream's "temporary issue"
noise); at the end the frozen credits are spent. The whole run lasts ``message_seconds * time_scale``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field

from services.nemo_sim import forms
from services.nemo_sim.capacity import TokenUse
from services.nemo_sim.drafts import apply_message
from services.nemo_sim.records import Session, User
from services.nemo_sim.state import SimState
from services.nemo_sim.stream import EventEncoder, Frames

TEMPORARY_ISSUE = "I encountered a temporary issue while finishing up. Please retry if something is off."
_INTROS = ("Sure, let me work on that.", "好的，我来处理。", "On it, updating your project now.")
_OUTROS = (
    "Done: {change}. Preview in timeline to check it, then click the Export button to render.",
    "I've {change}. Open the Tracks panel to see every layer. 完成后点击导出即可渲染。",
    "Updated: {change}. If you want a different order, drag the clip to the position you like.",
    "已更新时间线：{change}。点击导出按钮渲染视频，或打开轨道面板查看。",
)
_STREAM_ERRORS = ("the agent hit an internal error", "model backend unavailable", "tool execution failed")


@dataclass
class Run:
    sim: SimState
    session: Session
    user: User
    prompt: str
    cost: int
    silent: bool
    temporary_issue: bool
    encoder: EventEncoder
    duration_s: float
    heartbeat_s: float
    error_form: int | None = None  # an armed stream_error fault: which of the three forms
    frames: Frames | None = field(default_factory=asyncio.Queue)
    change: str = ""
    run_id: int = 0
    use: TokenUse | None = None  # the token's capacity record: the run holds one of its stream slots
    edited: bool = False  # its edit is applied (a restore finishes a run that was not)

    def emit(self, chunk: bytes | None) -> None:
        if self.frames is not None:
            self.frames.put_nowait(chunk)

    def detach(self) -> None:
        """The response is gone (finished, dropped or disconnected); the run goes on without it."""
        self.frames = None


def plan(
    duration_s: float, heartbeat_s: float, silent: bool, temporary_issue: bool, error: bool, edit_at: float = 0.10
) -> list:
    """(offset seconds, step) pairs in time order; heartbeats every ``heartbeat_s`` until the end; the edit lands
    ``edit_at`` of the way in (at most 0.8: before the draft is saved)."""
    steps: list[tuple[float, str]] = []
    if not silent:
        steps.append((min(0.05, edit_at), "intro"))
    steps += [(edit_at, "call_edit"), (edit_at, "edit"), (edit_at + 0.02, "result_edit")]
    if error:
        steps.append((0.50, "error"))
    steps += [(0.85, "call_save"), (0.87, "result_save")]
    if not silent:
        steps.append((0.92, "reply"))
        if temporary_issue:
            steps.append((0.96, "temporary_issue"))
    timed = [(at * duration_s, step) for at, step in steps]
    beats = int(duration_s / heartbeat_s) if heartbeat_s > 0 else 0
    timed += [(k * heartbeat_s, "heartbeat") for k in range(1, beats + 1) if k * heartbeat_s < duration_s]
    timed.append((duration_s, "end"))
    return sorted(timed, key=lambda item: item[0])  # stable: same-time steps keep their order


class _Steps:
    """What each planned step does; ``last_event`` marks where ``finishReason`` goes."""

    def __init__(self, run: Run, last_event: str, rng: random.Random) -> None:
        self.run, self.last_event, self.rng = run, last_event, rng
        self.beats = 0
        self.edit_id, self.save_id = f"call_{uuid.uuid4().hex[:12]}", f"call_{uuid.uuid4().hex[:12]}"
        self.tool = "generate_rough_cut" if run.session.draft is None else "edit_draft"

    def do(self, step: str) -> None:
        run, enc, fin = self.run, self.run.encoder, step == self.last_event
        if step == "heartbeat":
            run.emit(forms.heartbeat(run.sim.config, self.beats))
            self.beats += 1
        elif step == "intro":
            run.emit(enc.text(self.rng.choice(_INTROS), fin))
        elif step == "call_edit":
            run.emit(enc.call(self.edit_id, self.tool, {"instruction": run.prompt[:500]}, fin))
        elif step == "edit":
            run.change = apply_message(run.session, run.prompt, run.sim.rng)
            run.edited = True
            run.sim.touch()
        elif step == "result_edit":
            response = {"status": "success", "summary": run.change}
            run.emit(enc.result(self.edit_id, self.tool, response, fin))
        else:
            self._late(step, fin)

    def _late(self, step: str, fin: bool) -> None:
        run, enc = self.run, self.run.encoder
        if step == "error":
            run.emit(enc.error(run.error_form or 0, self.rng.choice(_STREAM_ERRORS)))
            run.emit(None)
            run.detach()
        elif step == "call_save":
            run.emit(enc.call(self.save_id, "save_draft", {"session_id": run.session.session_id}, fin))
        elif step == "result_save":
            response = {"status": "success", "draft_version": run.session.draft_version}
            run.emit(enc.result(self.save_id, "save_draft", response, fin))
        elif step == "reply":
            run.emit(enc.text(self.rng.choice(_OUTROS).format(change=run.change), fin))
        elif step == "temporary_issue":
            run.emit(enc.text(TEMPORARY_ISSUE, fin))


async def execute(run: Run) -> None:
    error = run.error_form is not None
    steps = plan(run.duration_s, run.heartbeat_s, run.silent, run.temporary_issue, error, run.sim.config.edit_at)
    events = [s for _, s in steps if s not in ("heartbeat", "edit", "error", "end")]
    doer = _Steps(run, events[-1] if events else "", run.sim.rng)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for offset, step in steps:
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if step == "end":
                run.sim.spend(run.user, run.cost)
                run.cost = 0
            else:
                doer.do(step)
    finally:
        end_run(run)


def end_run(run: Run) -> None:
    """The run is over (finished, or stopped by a reset or shutdown): free its slot, end its stream."""
    sim = run.sim
    run.session.runs_in_progress -= 1
    if sim.active_runs.get(run.run_id) is run:  # after a reset the table is a new one
        del sim.active_runs[run.run_id]
    if run.use is not None:
        sim.capacity.end_run(run.use, run.run_id)
    sim.touch()
    run.emit(None)
    run.detach()


def start_run(
    sim: SimState,
    session: Session,
    user: User,
    prompt: str,
    error_form: int | None,
    *,
    use: TokenUse | None = None,
    run_id: int | None = None,
    duration_s: float | None = None,
) -> Run | None:
    """Accept a message: freeze its credits and start the run. None when the user cannot afford it."""
    config = sim.config
    cost = config.credits_per_message
    if not sim.freeze(user, cost):
        return None
    silent_draw, issue_draw = sim.rng.random(), sim.rng.random()
    run = Run(
        sim=sim,
        session=session,
        user=user,
        prompt=prompt,
        cost=cost,
        silent=silent_draw < config.silent_share,
        temporary_issue=issue_draw < config.temporary_issue_share,
        encoder=EventEncoder(f"e-{uuid.uuid4()}", config.legacy_events),
        duration_s=config.scaled(config.message_seconds) if duration_s is None else duration_s,
        heartbeat_s=config.scaled(config.heartbeat_every_s),
        error_form=error_form,
        run_id=next(sim.run_ids) if run_id is None else run_id,
        use=use,
    )
    session.messages.append(prompt)
    session.runs_in_progress += 1
    sim.active_runs[run.run_id] = run
    task = asyncio.create_task(execute(run))
    sim.runs.add(task)
    task.add_done_callback(sim.runs.discard)
    return run

"""``POST /run_sse``: accept a message (ADK's snake_case or camelCase body) and stream its run.

Unknown session: ``lost_session_form`` (by default ADK's HTTP 404 ``{"detail":"Session not found"}``). Out of
credits: HTTP 200 JSON code 2001, not a stream. No stream slot free (``max_streams_per_token``): HTTP 429.
None of these starts a run. Otherwise the response streams the run's frames (see ``agent.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.nemo_sim import forms
from services.nemo_sim.agent import Run, start_run
from services.nemo_sim.capacity import Refused, TokenUse
from services.nemo_sim.gate import authenticate, enter, refusal, token_use
from services.nemo_sim.replies import code_error
from services.nemo_sim.state import SimState
from services.nemo_sim.stream import SSEResponse

router = APIRouter()
DEFAULT_DROP_AFTER = 2


def _pick(body: dict[str, Any], snake: str, camel: str) -> Any:
    return body[snake] if snake in body else body.get(camel)


def message_text(body: dict[str, Any]) -> str | None:
    message = _pick(body, "new_message", "newMessage")
    parts = message.get("parts") if isinstance(message, dict) else None
    if not isinstance(parts, list):
        return None
    return "\n".join(str(p["text"]) for p in parts if isinstance(p, dict) and p.get("text") is not None)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _stream_fault(request: Request, sim: SimState, session_id: str) -> tuple[int | None, int | None]:
    """(error form, drop after n frames) from an armed stream fault, if any."""
    fault = sim.faults.take("run_sse", session_id, stream=True)
    if fault is None:
        return None, None
    spec = fault.spec
    sim.ledger.fault_fired(request, "run_sse", spec.kind)
    if spec.kind == "drop":
        return None, spec.after_events if spec.after_events is not None else DEFAULT_DROP_AFTER
    if spec.error_form is not None:
        return spec.error_form, None
    form, sim.stream_errors = sim.stream_errors, sim.stream_errors + 1
    return form, None


@router.post("/run_sse")
async def run_sse(request: Request) -> Response:
    body = await _body(request)
    session_id = _pick(body, "session_id", "sessionId") if body is not None else None
    sim = enter(request, "run_sse", str(session_id) if session_id is not None else None)
    user = authenticate(request, sim)
    text = message_text(body) if body is not None else None
    if text is None:
        return JSONResponse({"detail": "new_message with parts is required"}, status_code=422)
    session = sim.session_of(user, str(session_id))
    if session is None:
        return forms.session_lost(sim.config, "run_sse")
    if user.available < sim.config.credits_per_message:
        return code_error(2001, "insufficient credits", fields=sim.error_fields)
    use = token_use(request, sim, user)
    run_id, duration_s = next(sim.run_ids), sim.config.scaled(sim.config.message_seconds)
    try:  # the stream slot, before anything is accepted: a 429 here leaves no trace
        sim.capacity.admit_run(use, sim.config, run_id, time.time() + duration_s)
    except Refused as exc:
        return refusal(request, sim, exc)
    error_form, drop_after = _stream_fault(request, sim, session.session_id)
    run = start_run(sim, session, user, text, error_form, use=use, run_id=run_id, duration_s=duration_s)
    if run is None:  # unreachable: nothing awaited since the balance check
        sim.capacity.end_run(use, run_id)
        return code_error(2001, "insufficient credits", fields=sim.error_fields)
    return _stream(sim, run, use, drop_after)


def _stream(sim: SimState, run: Run, use: TokenUse, drop_after: int | None) -> SSEResponse:
    """The response that writes the run's frames; leaving it never stops the run."""
    frames = run.frames
    assert frames is not None
    sim.ledger.in_flight_streams += 1
    sim.capacity.stream_opened(use)
    ledger, capacity = sim.ledger, sim.capacity

    def on_close() -> None:
        ledger.in_flight_streams -= 1
        capacity.stream_closed(use)
        if run.frames is frames:
            run.detach()

    return SSEResponse(frames, drop_after, on_close)

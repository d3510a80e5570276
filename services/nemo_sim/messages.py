"""``POST /run_sse``: accept a message (ADK's snake_case or camelCase body) and stream its run.

Unknown session: HTTP 404 ``{"detail":"Session not found"}`` (ADK's form). Out of credits: HTTP 200 JSON
code 2001, not a stream. Otherwise the response streams the run's frames (see ``agent.py``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.nemo_sim.agent import start_run
from services.nemo_sim.gate import authenticate, enter
from services.nemo_sim.replies import code_error, session_not_found_sse
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


def _stream_fault(sim: SimState, session_id: str) -> tuple[int | None, int | None]:
    """(error form, drop after n frames) from an armed stream fault, if any."""
    spec = sim.faults.take("run_sse", session_id, stream=True)
    if spec is None:
        return None, None
    if spec.kind == "drop":
        return None, spec.after_events if spec.after_events is not None else DEFAULT_DROP_AFTER
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
        return session_not_found_sse()
    if user.available < sim.config.credits_per_message:
        return code_error(2001, "insufficient credits", fields=sim.error_fields)
    error_form, drop_after = _stream_fault(sim, session.session_id)
    run = start_run(sim, session, user, text, error_form)
    if run is None:  # unreachable: nothing awaited since the balance check
        return code_error(2001, "insufficient credits", fields=sim.error_fields)
    frames = run.frames
    assert frames is not None
    sim.ledger.in_flight_streams += 1
    ledger = sim.ledger

    def on_close() -> None:
        ledger.in_flight_streams -= 1
        if run.frames is frames:
            run.detach()

    return SSEResponse(frames, drop_after, on_close)

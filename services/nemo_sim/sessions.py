"""Sessions, their state, and the credit balance: ``/api/tasks/…``, ``/api/state/…``, ``/api/credits/…``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.nemo_sim import forms
from services.nemo_sim.bodies import json_object
from services.nemo_sim.config import SimConfig
from services.nemo_sim.gate import TOKEN_KEY, enter_authenticated
from services.nemo_sim.records import Session
from services.nemo_sim.replies import ok

router = APIRouter()
CANVAS = {"width": 1080, "height": 1920}


@router.post("/api/tasks/me/with-session/nemo_agent")
async def create_session(request: Request) -> Response:
    sim, user = enter_authenticated(request, "session")
    body = await json_object(request, required=False)
    task_name = str(body.get("task_name") or "project")
    language = str(body.get("language") or "en")
    session = sim.new_session(user.user_id, task_name, language, getattr(request.state, TOKEN_KEY))
    return ok({"task_id": session.task_id, "session_id": session.session_id, "user_id": user.user_id})


def state_view(session: Session, config: SimConfig) -> dict:
    """The state reply's data; a session with no edit yet shows the configured empty draft."""
    return {
        "session_id": session.session_id,
        "task_id": session.task_id,
        "task_name": session.task_name,
        "state": {
            "draft": session.draft if session.draft is not None else forms.empty_draft(config),
            "video_infos": session.video_infos,
            "generated_media": session.generated_media,
            "canvas_config": dict(CANVAS),
        },
    }


@router.get("/api/state/nemo_agent/me/{session_id}/latest")
async def session_state(request: Request, session_id: str) -> Response:
    sim, user = enter_authenticated(request, "state", session_id)
    session = sim.session_of(user, session_id)
    if session is None:
        return forms.session_lost(sim.config, "state")
    return ok(state_view(session, sim.config))


@router.get("/api/credits/balance/simple")
async def credits_balance(request: Request) -> Response:
    _, user = enter_authenticated(request, "credits")
    return ok({"available": user.available, "frozen": user.frozen, "total": user.available + user.frozen})

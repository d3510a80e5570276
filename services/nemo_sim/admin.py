"""``/_sim/``: the control panel tests and benchmarks use (no auth; the simulator listens on loopback only).

Scenario config, reset, faults, counters, recent requests, sessions, credits, tokens, and the uploaded files
behind ``cdn_url``. Admin requests are not counted.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from services.nemo_sim.faults import FaultSpec
from services.nemo_sim.gate import sim_of
from services.nemo_sim.outputs import media_of, output_sha256
from services.nemo_sim.render_clock import status_of
from services.nemo_sim.upload_stream import safe_name

router = APIRouter(prefix="/_sim")


class CreditsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    available: int = Field(ge=0)
    user_id: str | None = None


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1)
    credits: int = Field(100, ge=0)
    user_id: str | None = None


@router.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    sim.reset()
    return {"ok": True, "config": sim.config.model_dump()}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return sim_of(request).config.model_dump()


@router.patch("/config")
async def patch_config(request: Request) -> Response:
    sim = sim_of(request)
    try:
        changes = await request.json()
    except ValueError:
        changes = None
    if not isinstance(changes, dict):
        return JSONResponse({"detail": "body must be a JSON object"}, status_code=422)
    try:
        sim.set_config(sim.config.patched(changes))
    except ValidationError as exc:
        return JSONResponse({"detail": exc.errors(include_url=False, include_context=False)}, status_code=422)
    return JSONResponse(sim.config.model_dump())


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    return {"armed": sim_of(request).faults.listing()}


@router.post("/faults")
async def add_fault(request: Request, spec: FaultSpec) -> dict[str, Any]:
    sim = sim_of(request)
    sim.faults.add(spec)
    return {"armed": sim.faults.listing()}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    sim_of(request).faults.clear()
    return {"armed": []}


@router.get("/counters")
async def counters(request: Request) -> dict[str, Any]:
    sim = sim_of(request)
    return {**sim.ledger.snapshot(), "runs_in_progress": len(sim.runs)}


@router.get("/requests")
async def recent_requests(request: Request, limit: int = 100) -> list[dict[str, Any]]:
    return sim_of(request).ledger.recent(limit)


@router.get("/sessions/{session_id}")
async def session_view(request: Request, session_id: str) -> dict[str, Any]:
    session = sim_of(request).sessions.get(session_id)
    if session is None:
        raise HTTPException(404, "unknown session")
    return {
        "session_id": session.session_id,
        "task_id": session.task_id,
        "user_id": session.user_id,
        "draft": session.draft,
        "draft_version": session.draft_version,
        "messages": session.messages,
        "renders": session.renders,
        "files": session.files,
        "runs_in_progress": session.runs_in_progress,
    }


@router.get("/renders/{render_id}")
async def render_view(request: Request, render_id: str) -> dict[str, Any]:
    render = sim_of(request).renders.get(render_id)
    if render is None:
        raise HTTPException(404, "unknown render")
    sim = sim_of(request)
    now = status_of(render, time.time())
    media = media_of(sim, render)
    output = {"size": media.size, "duration": media.duration_ms / 1000, "sha256": await output_sha256(sim, render)}
    return {
        "id": render.render_id,
        "session_id": render.session_id,
        "user_id": render.user_id,
        "draft_version": render.draft_version,
        "status": now.status,
        "progress": now.progress,
        "fails": render.fails,
        # the file the render serves once completed (the same bytes from both links)
        "output": output,
    }


@router.post("/credits")
async def set_credits(request: Request, body: CreditsBody) -> dict[str, Any]:
    sim = sim_of(request)
    if body.user_id is not None and body.user_id not in sim.users:
        raise HTTPException(404, "unknown user")
    return {"users": sim.set_credits(body.available, body.user_id)}


@router.post("/tokens")
async def add_token(request: Request, body: TokenBody) -> dict[str, Any]:
    user = sim_of(request).register_token(body.token, body.credits, body.user_id)
    return {"user_id": user.user_id, "credits": user.available}  # the token itself is never echoed


@router.post("/tokens/expire")
async def expire_tokens(request: Request) -> dict[str, int]:
    return {"expired": sim_of(request).expire_tokens()}


@router.get("/files/{session_id}/{filename}")
async def uploaded_file(request: Request, session_id: str, filename: str) -> Response:
    sim = sim_of(request)
    path = sim.session_dir(safe_name(session_id)) / safe_name(filename)
    if not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path)

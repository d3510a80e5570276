"""``/_sim/``: the control panel tests and benchmarks use (no auth; the simulator listens on loopback only).

Scenario config, reset, faults (one at a time, or the chaos preset), counters, recent requests, sessions (and
losing one), renders, credits, tokens, and the uploaded files behind ``cdn_url``. Admin requests are not
counted.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from services.nemo_sim.activity import counters as all_counters
from services.nemo_sim.faults import APPLIES, ENDPOINT_CLASSES, Endpoint, EndpointClass, FaultSpec
from services.nemo_sim.gate import sim_of
from services.nemo_sim.outputs import media_of, output_sha256
from services.nemo_sim.render_clock import status_of
from services.nemo_sim.upload_stream import safe_name

router = APIRouter(prefix="/_sim")


class CreditsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    available: int = Field(ge=0)
    user_id: str | None = None


ChaosClass = Literal["429", "5xx", "reset", "drop", "token_expired", "session_lost"]
CHAOS_CLASSES: tuple[str, ...] = ChaosClass.__args__  # type: ignore[attr-defined]


class ChaosBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(0.1, gt=0, le=1)
    endpoints: EndpointClass | list[Endpoint] = "retryable"
    classes: list[ChaosClass] | None = None  # default: every class
    retry_after: float = Field(1.0, ge=0)  # the 429s' Retry-After (seconds, not scaled)


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
    if changes.get("state_file", sim.config.state_file) != sim.config.state_file:
        return JSONResponse({"detail": "state_file is set at start (--state-file), not at run time"}, status_code=422)
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
    sim.faults.add(spec, seed=sim.config.seed)
    return {"armed": sim.faults.listing()}


def chaos_specs(body: ChaosBody) -> list[FaultSpec]:
    """The faults of the chaos preset: each retryable class at ``rate`` of the calls it applies to."""
    where = ENDPOINT_CLASSES[body.endpoints] if isinstance(body.endpoints, str) else frozenset(body.endpoints)
    plan: dict[str, list[tuple[str, float, frozenset[str]]]] = {
        "429": [("http_429", body.rate, where)],
        "5xx": [("http_5xx", body.rate, where)],
        "reset": [("reset", body.rate / 2, where), ("reset_after_accept", body.rate / 2, where)],
        "drop": [("drop", body.rate, where & {"run_sse"})],  # mid-stream
        "token_expired": [("token_expired", body.rate, where & APPLIES["token_expired"])],
        "session_lost": [("session_lost", body.rate, where & APPLIES["session_lost"])],
    }
    specs = []
    for name in body.classes or CHAOS_CLASSES:
        for kind, rate, targets in plan[name]:
            if targets:
                extra = {"retry_after": body.retry_after} if kind == "http_429" else {}
                specs.append(FaultSpec(endpoints=sorted(targets), kind=kind, rate=rate, **extra))
    return specs


@router.post("/faults/chaos")
async def add_chaos(request: Request, body: ChaosBody) -> dict[str, Any]:
    """Arm every retryable class of fault at ``rate`` (429, 5xx, resets, mid-stream drops, expired tokens,
    lost sessions), on top of what is armed."""
    sim = sim_of(request)
    for spec in chaos_specs(body):
        sim.faults.add(spec, seed=sim.config.seed)
    return {"armed": sim.faults.listing()}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    sim_of(request).faults.clear()
    return {"armed": []}


@router.get("/counters")
async def counters(request: Request) -> dict[str, Any]:
    return all_counters(sim_of(request))


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
        "edits": session.edits,
        "token": session.token_key,
        "lost": session.lost,
    }


@router.delete("/sessions/{session_id}")
async def lose_session(request: Request, session_id: str) -> dict[str, Any]:
    """The upstream forgets the session: from now on every call naming it says "not found" (in the
    configured form). Its counters stay."""
    session = sim_of(request).sessions.get(session_id)
    if session is None:
        raise HTTPException(404, "unknown session")
    session.lost = True
    return {"session_id": session_id, "lost": True}


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

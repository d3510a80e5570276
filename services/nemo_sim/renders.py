"""The render family, ``/api/render/proxy/lambda…``: submit, status (shapes A and B), cancel.

These reply ``{"success":…}`` rather than the ``code`` envelope. Renders are free. A finished render's
``outputUrl``/``output.url`` is a signed CDN-like link that works without a token; it and the download
endpoint live in ``outputs.py``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.nemo_sim import forms
from services.nemo_sim.capacity import Refused
from services.nemo_sim.drafts import export_ready
from services.nemo_sim.gate import TOKEN_KEY, enter_authenticated, refusal, sim_of, token_use
from services.nemo_sim.outputs import media_of, output_url, owned_render
from services.nemo_sim.records import Render, Session
from services.nemo_sim.render_clock import error_of, status_of
from services.nemo_sim.replies import SimReply, code_error, render_error, render_ok
from services.nemo_sim.state import SimState

router = APIRouter()
ATTRIBUTION = ("x-skill-source", "x-skill-version", "x-skill-platform")


async def _submit_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SimReply(
            render_error(400, "request body must be a JSON object", fields=request.app.state.sim.error_fields)
        )
    if isinstance(body.get("draft"), str):  # some callers send the draft as a JSON string
        try:
            body["draft"] = json.loads(body["draft"])
        except ValueError:
            body["draft"] = None
    return body


def _check_attribution(request: Request, sim: SimState) -> None:
    missing = [h for h in ATTRIBUTION if not request.headers.get(h, "").strip()]
    if missing:
        names = ", ".join("X-Skill-" + h.split("-")[-1].capitalize() for h in missing)
        message = f"free plan export blocked: missing attribution headers ({names})"
        raise SimReply(code_error(402, message, 402, fields=sim.error_fields))


@router.post("/api/render/proxy/lambda")
async def submit(request: Request) -> Response:
    body = await _submit_body(request)
    session_id = body.get("sessionId") or body.get("session_id")
    sim, user = enter_authenticated(request, "render_submit", str(session_id) if session_id else None)
    _check_attribution(request, sim)
    render_id = body.get("id")
    if not isinstance(render_id, str) or not render_id:
        return render_error(400, "id is required", fields=sim.error_fields)
    if render_id in sim.renders:
        return render_error(409, "render id already exists", code=409, fields=sim.error_fields)
    session = sim.session_of(user, str(session_id) if session_id else None)
    if session is None:
        return forms.session_lost(sim.config, "render_submit")
    if not export_ready(body.get("draft")):
        return render_error(400, "draft is empty", fields=sim.error_fields)
    use, now = token_use(request, sim, user), time.time()
    try:  # a render slot, before anything is created: a 429 here leaves no trace
        sim.capacity.check_render(use, sim.config, now)
    except Refused as exc:
        return refusal(request, sim, exc)
    render = _new_render(sim, session, render_id, body["draft"], now)
    render.token_key = getattr(request.state, TOKEN_KEY)
    sim.capacity.add_render(use, render, now)
    return render_ok({"id": render_id, "status": "pending", "progress": 5})


def _new_render(sim: SimState, session: Session, render_id: str, draft: Any, now: float) -> Render:
    config = sim.config
    render = Render(
        render_id=render_id,
        session_id=session.session_id,
        user_id=session.user_id,
        draft=draft,
        draft_version=session.draft_version,
        created_at=now,
        duration_s=config.scaled(config.render_seconds),
        fails=sim.rng.random() < config.render_fail_share,
        output_bytes=config.output_bytes,
        duplicate_of=duplicate_of(sim, session, now),
    )
    sim.renders[render_id] = render
    session.renders.append(render_id)
    return render


def duplicate_of(sim: SimState, session: Session, now: float) -> str | None:
    """An earlier render of this session at its current draft version that has not failed or been canceled:
    a new submit then renders the same draft again (a duplicate)."""
    for render_id in session.renders:
        prior = sim.renders.get(render_id)
        if prior is None or prior.draft_version != session.draft_version:
            continue
        if status_of(prior, now).status not in ("failed", "canceled"):
            return render_id
    return None


def _owned_render(request: Request, endpoint: str, render_id: str) -> tuple[SimState, Render]:
    """Count the request (under the render's session), fire faults, authenticate, find the render."""
    known = sim_of(request).renders.get(render_id)
    sim, user = enter_authenticated(request, endpoint, known.session_id if known else None)
    return sim, owned_render(sim, user, render_id)


def _shape(sim: SimState) -> str:
    shape = sim.config.render_shape
    if shape == "both":
        shape = "A" if sim.status_replies % 2 == 0 else "B"
        sim.status_replies += 1
    return shape


@router.get("/api/render/proxy/lambda/{render_id}")
async def status(request: Request, render_id: str) -> Response:
    sim, render = _owned_render(request, "render_status", render_id)
    now = status_of(render, time.time())
    url = output_url(request, sim, render) if now.status == "completed" else None
    if _shape(sim) == "B":
        output = None
        if url is not None:
            media = media_of(sim, render)
            output = {"url": url, "duration": media.duration_ms / 1000, "size": media.size}
        doc: dict[str, Any] = {"taskId": render.render_id, "status": now.status, "progress": now.progress}
        doc["output"] = output
        if now.status == "failed":
            doc["error"] = error_of(render)
        return JSONResponse(doc)
    data: dict[str, Any] = {
        "id": render.render_id,
        "status": now.status,
        "progress": now.progress,
        "outputUrl": url,
        "createdAt": int(render.created_at * 1000),
        "completedAt": int(now.finished_at * 1000) if now.finished_at is not None else None,
    }
    if now.status == "failed":
        data["error"] = error_of(render)
    return render_ok(data)


@router.post("/api/render/proxy/lambda/{render_id}/cancel")
async def cancel(request: Request, render_id: str) -> Response:
    sim, render = _owned_render(request, "render_cancel", render_id)
    now = status_of(render, time.time())
    if now.terminal and now.status != "canceled":
        return render_error(409, f"render already {now.status}", fields=sim.error_fields)
    if render.canceled_at is None:
        render.canceled_at = time.time()
    return render_ok({"id": render.render_id, "status": "canceled"})

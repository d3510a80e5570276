"""The render family, ``/api/render/proxy/…``: submit, status (shapes A and B), cancel, download.

These reply ``{"success":…}`` rather than the ``code`` envelope. Renders are free. A finished render's
``outputUrl``/``output.url`` is this server's download URL with a signature, so it works without a token
(like a CDN link); the download also accepts the owner's bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.nemo_sim.drafts import export_ready
from services.nemo_sim.gate import authenticate, enter, enter_authenticated, sim_of
from services.nemo_sim.media import render_mp4
from services.nemo_sim.records import Render, User
from services.nemo_sim.render_clock import error_of, status_of
from services.nemo_sim.replies import SimReply, code_error, render_error, render_ok
from services.nemo_sim.state import SimState

router = APIRouter()
ATTRIBUTION = ("x-skill-source", "x-skill-version", "x-skill-platform")


def _signature(sim: SimState, render_id: str) -> str:
    return hmac.new(sim.secret, render_id.encode(), hashlib.sha256).hexdigest()[:32]


def _download_url(request: Request, sim: SimState, render: Render) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/api/render/proxy/{render.render_id}/download?sig={_signature(sim, render.render_id)}"


async def _submit_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SimReply(render_error(400, "request body must be a JSON object"))
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
        raise SimReply(code_error(402, message, 402, msg_field=sim.config.msg_field))


@router.post("/api/render/proxy/lambda")
async def submit(request: Request) -> Response:
    body = await _submit_body(request)
    session_id = body.get("sessionId") or body.get("session_id")
    sim, user = enter_authenticated(request, "render_submit", str(session_id) if session_id else None)
    _check_attribution(request, sim)
    render_id = body.get("id")
    if not isinstance(render_id, str) or not render_id:
        return render_error(400, "id is required")
    if render_id in sim.renders:
        return render_error(409, "render id already exists", code=409)
    session = sim.session_of(user, str(session_id) if session_id else None)
    if session is None:
        return render_error(200, "session not found", code=1002)
    if not export_ready(body.get("draft")):
        return render_error(400, "draft is empty")
    config = sim.config
    sim.renders[render_id] = Render(
        render_id=render_id,
        session_id=session.session_id,
        user_id=user.user_id,
        draft=body["draft"],
        draft_version=session.draft_version,
        created_at=time.time(),
        duration_s=config.scaled(config.render_seconds),
        fails=sim.rng.random() < config.render_fail_share,
    )
    session.renders.append(render_id)
    return render_ok({"id": render_id, "status": "pending", "progress": 5})


def _owned_render(request: Request, endpoint: str, render_id: str) -> tuple[SimState, Render]:
    """Count the request (under the render's session), fire faults, authenticate, find the render."""
    known = sim_of(request).renders.get(render_id)
    sim, user = enter_authenticated(request, endpoint, known.session_id if known else None)
    return sim, _render_of(sim, user, render_id)


def _render_of(sim: SimState, user: User, render_id: str) -> Render:
    render = sim.renders.get(render_id)
    if render is None or render.user_id != user.user_id:
        raise SimReply(render_error(404, "render not found"))
    return render


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
    url = _download_url(request, sim, render) if now.status == "completed" else None
    if _shape(sim) == "B":
        output = None
        if url is not None:
            size = len(render_mp4(render.render_id, render.session_id, render.draft_version, render.draft))
            output = {"url": url, "duration": render.draft.get("d", 0) / 1000, "size": size}
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
    _, render = _owned_render(request, "render_cancel", render_id)
    now = status_of(render, time.time())
    if now.terminal and now.status != "canceled":
        return render_error(409, f"render already {now.status}")
    if render.canceled_at is None:
        render.canceled_at = time.time()
    return render_ok({"id": render.render_id, "status": "canceled"})


@router.get("/api/render/proxy/{render_id}/download")
async def download(request: Request, render_id: str) -> Response:
    known = sim_of(request).renders.get(render_id)
    sim = enter(request, "render_download", known.session_id if known else None)
    signature = request.query_params.get("sig", "")
    signed = known is not None and hmac.compare_digest(signature, _signature(sim, render_id))
    render = known if signed else _render_of(sim, authenticate(request, sim), render_id)
    assert render is not None
    now = status_of(render, time.time())
    if now.status != "completed":
        return render_error(409, f"render is not completed (status: {now.status})")
    body = render_mp4(render.render_id, render.session_id, render.draft_version, render.draft)
    headers = {"Content-Disposition": f'attachment; filename="{render.render_id}.mp4"'}
    return Response(body, media_type="video/mp4", headers=headers)

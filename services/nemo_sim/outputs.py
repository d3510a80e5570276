"""A finished render's bytes: the download endpoint and the output URL (a signed, CDN-like link).

- ``GET /api/render/proxy/<id>/download``: the owner's bearer token, or the link's ``sig``.
- ``GET /cdn/renders/<id>.mp4?sig=…``: what ``outputUrl`` / ``output.url`` point at; no token, like a CDN.

Both serve the same file (``mp4.py``), honour a single ``Range`` (206, or 416 past the end) and ``HEAD``,
and stream in constant memory. The bad cases are knobs (``output_link``, ``output_url_ttl_s``,
``download_link``, ``output_body``): an expired link answers like an object store (XML, 403/404).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from services.nemo_sim.gate import authenticate, enter, sim_of
from services.nemo_sim.mp4 import RenderMedia, build_media
from services.nemo_sim.records import Render, User
from services.nemo_sim.render_clock import status_of
from services.nemo_sim.replies import SimReply, render_error
from services.nemo_sim.state import SimState

router = APIRouter()
CDN_PATH = "/cdn/renders/{render_id}.mp4"
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Something went wrong</title></head><body>"
    "<h1>Oops!</h1><p>We could not load this page. Please try again later.</p></body></html>"
)
_S3_ERROR = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
UNSATISFIABLE = (-1, -1)


def signature(sim: SimState, render_id: str) -> str:
    return hmac.new(sim.secret, render_id.encode(), hashlib.sha256).hexdigest()[:32]


def output_url(request: Request, sim: SimState, render: Render) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/cdn/renders/{render.render_id}.mp4?sig={signature(sim, render.render_id)}"


def media_of(sim: SimState, render: Render) -> RenderMedia:
    """The render's file, built once (the same bytes after a restart: it depends on the render alone)."""
    media = sim.media.get(render.render_id)
    if media is None:
        media = build_media(
            render.render_id,
            render.session_id,
            render.draft_version,
            render.draft,
            render.created_at,
            render.output_bytes,
        )
        sim.media[render.render_id] = media
    return media


async def output_sha256(sim: SimState, render: Render) -> str:
    """The sha256 of the render's file, computed once (off the event loop: it may be 500 MB)."""
    digest = sim.output_sha.get(render.render_id)
    if digest is None:
        digest = await anyio.to_thread.run_sync(media_of(sim, render).sha256)
        sim.output_sha[render.render_id] = digest
    return digest


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a single ``Range``; None to send everything (none, several, or malformed);
    ``UNSATISFIABLE`` past the end."""
    match = _RANGE.match(header or "")
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = int(last)
        return (max(0, size - count), size) if count > 0 and size > 0 else UNSATISFIABLE
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None
    return (start, stop) if start < size else UNSATISFIABLE


async def _pieces(media: RenderMedia, start: int, stop: int) -> AsyncIterator[bytes]:
    for piece in media.iter_range(start, stop):
        yield piece


def serve_media(request: Request, media: RenderMedia, name: str) -> Response:
    """The file (or the asked range of it) as ``video/mp4``, streamed."""
    size = media.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": '"' + hashlib.sha256(media.tag + str(size).encode()).hexdigest()[:32] + '"',
        "Content-Disposition": f'attachment; filename="{name}.mp4"',
    }
    wanted = byte_range(request.headers.get("range"), size)
    if wanted == UNSATISFIABLE:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, stop = wanted or (0, size)
    status = 200 if wanted is None else 206
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="video/mp4")
    return StreamingResponse(_pieces(media, start, stop), status_code=status, headers=headers, media_type="video/mp4")


def _s3_error(status: int, code: str, message: str) -> Response:
    return Response(_S3_ERROR.format(code=code, message=message), status_code=status, media_type="application/xml")


def _link_expired(sim: SimState, finished_at: float | None) -> str | None:
    """Why the output URL no longer works, per the knobs: "expired_403", "expired_404" or None."""
    config = sim.config
    if config.output_link != "live":
        return config.output_link
    ttl = config.scaled(config.output_url_ttl_s)
    if config.output_url_ttl_s > 0 and finished_at is not None and time.time() >= finished_at + ttl:
        return "expired_403"
    return None


@router.api_route(CDN_PATH, methods=["GET", "HEAD"])
async def cdn_output(request: Request, render_id: str) -> Response:
    known = sim_of(request).renders.get(render_id)
    sim = enter(request, "render_output", known.session_id if known else None)
    signed = known is not None and hmac.compare_digest(request.query_params.get("sig", ""), signature(sim, render_id))
    if known is None or not signed:
        return _s3_error(403, "AccessDenied", "Access Denied")
    now = status_of(known, time.time())
    if now.status != "completed":
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    expired = _link_expired(sim, now.finished_at)
    if expired == "expired_403":
        return _s3_error(403, "AccessDenied", "Request has expired")
    if expired == "expired_404":
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    if sim.config.output_body == "html":
        return HTMLResponse(_ERROR_PAGE)
    return serve_media(request, media_of(sim, known), render_id)


def owned_render(sim: SimState, user: User, render_id: str) -> Render:
    render = sim.renders.get(render_id)
    if render is None or render.user_id != user.user_id:
        raise SimReply(render_error(404, "render not found", fields=sim.error_fields))
    return render


@router.api_route("/api/render/proxy/{render_id}/download", methods=["GET", "HEAD"])
async def download(request: Request, render_id: str) -> Response:
    known = sim_of(request).renders.get(render_id)
    sim = enter(request, "render_download", known.session_id if known else None)
    signature_ok = known is not None and hmac.compare_digest(
        request.query_params.get("sig", ""), signature(sim, render_id)
    )
    render = known if signature_ok and known is not None else owned_render(sim, authenticate(request, sim), render_id)
    now = status_of(render, time.time())
    if now.status != "completed":
        return render_error(409, f"render is not completed (status: {now.status})", fields=sim.error_fields)
    gone = sim.config.download_link
    if gone != "live":
        status = 404 if gone == "gone_404" else 410
        return render_error(status, "render output is no longer available", fields=sim.error_fields)
    if sim.config.output_body == "html":
        return HTMLResponse(_ERROR_PAGE)
    return serve_media(request, media_of(sim, render), render.render_id)

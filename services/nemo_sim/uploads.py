"""``POST /api/upload-video/nemo_agent/me/<sid>``: multipart ``files`` streamed to disk, or JSON ``urls``.

Refusals are HTTP 200 with the upstream code (4001 type, 4002 size), as the ``/api/`` envelope does for every
business error. The limits come from the profile named by ``X-Skill-Source``; an unknown or missing source
gets the backend-wide ones (500 MB, every backend format). A refused request changes nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import APIRouter
from python_multipart.exceptions import MultipartParseError
from starlette.requests import Request
from starlette.responses import Response

from services.nemo_sim import forms
from services.nemo_sim.bodies import json_object
from services.nemo_sim.gate import enter_authenticated
from services.nemo_sim.media import media_info
from services.nemo_sim.records import Session
from services.nemo_sim.replies import SimReply, code_error, ok
from services.nemo_sim.state import SimState
from services.nemo_sim.upload_stream import (
    FilePart,
    MultipartUpload,
    UploadLimits,
    boundary_of,
    format_of,
    safe_name,
)
from shared.nemo.profiles import BACKEND_FORMATS, MB, PROFILES

router = APIRouter()
BACKEND_LIMITS = UploadLimits(max_bytes=500 * MB, accepted=BACKEND_FORMATS)


def limits_for(request: Request) -> UploadLimits:
    profile = PROFILES.get(request.headers.get("x-skill-source", ""))
    if profile is None:
        return BACKEND_LIMITS
    return UploadLimits(max_bytes=profile.max_upload_bytes, accepted=profile.accepted_formats)


def _type_error(fmt: str, limits: UploadLimits) -> tuple[int, str]:
    shown = f".{fmt}" if fmt else "(no extension)"
    return 4001, f"unsupported file type: {shown}; accepted: {', '.join(sorted(limits.accepted))}"


def _refusal(parts: list[FilePart], limits: UploadLimits) -> tuple[int, str] | None:
    for part in parts:
        if part.refused == "type":
            return _type_error(part.fmt, limits)
        if part.refused == "size":
            return 4002, f"file too large: {part.filename} is {part.size / MB:.1f} MB > {limits.label}"
    return None


def _join(session: Session, infos: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
    """New files join the session's ``video_infos``; a file uploaded again replaces its old entry."""
    names = {info["filename"] for info in infos}
    session.video_infos = [v for v in session.video_infos if v["filename"] not in names] + infos
    session.files = [f for f in session.files if f["filename"] not in names] + files


async def _from_multipart(request: Request, sim: SimState, session: Session, boundary: bytes) -> list[dict]:
    limits = limits_for(request)
    directory = sim.session_dir(session.session_id)
    upload = MultipartUpload(directory, limits)
    try:
        await upload.consume(request, boundary)
    except MultipartParseError:
        upload.discard()
        raise SimReply(code_error(400, "malformed multipart body", 400, fields=sim.error_fields)) from None
    refusal = _refusal(upload.parts, limits) or (None if upload.parts else (400, "no files in field 'files'"))
    if refusal is not None:
        upload.discard()
        status = 400 if refusal[0] == 400 else 200
        raise SimReply(code_error(*refusal, status, fields=sim.error_fields))
    base = str(request.base_url).rstrip("/")
    infos, files = [], []
    for part in upload.parts:
        part.tmp_path.replace(directory / part.filename)
        digest = part.sha.hexdigest()
        url = f"{base}/_sim/files/{session.session_id}/{quote(part.filename)}"
        infos.append(media_info(part.filename, part.fmt, digest, url))
        files.append({"filename": part.filename, "size": part.size, "sha256": digest, "source": "upload"})
    _join(session, infos, files)
    return infos


def _from_urls(request: Request, sim: SimState, session: Session, body: dict[str, Any]) -> list[dict]:
    urls = body.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise SimReply(code_error(400, "urls must be a non-empty list of strings", 400, fields=sim.error_fields))
    limits = limits_for(request)
    infos, files = [], []
    for url in urls:  # never fetched: name and type come from the URL's path
        filename = safe_name(unquote(PurePosixPath(urlsplit(url).path).name), fallback="remote")
        fmt = format_of(filename)
        if fmt not in limits.accepted:
            raise SimReply(code_error(*_type_error(fmt, limits), fields=sim.error_fields))
        digest = hashlib.sha256(url.encode()).hexdigest()
        infos.append(media_info(filename, fmt, digest, url))
        files.append({"filename": filename, "size": None, "sha256": digest, "source": "url"})
    _join(session, infos, files)
    return infos


@router.post("/api/upload-video/nemo_agent/me/{session_id}")
async def upload(request: Request, session_id: str) -> Response:
    sim, user = enter_authenticated(request, "upload", session_id)
    session = sim.session_of(user, session_id)
    if session is None:
        return forms.session_lost(sim.config, "upload")
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is not None:
        infos = await _from_multipart(request, sim, session, boundary)
    else:
        infos = _from_urls(request, sim, session, await json_object(request))
    return ok({"files": infos, "session_state_applied": True})

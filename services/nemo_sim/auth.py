"""``POST /api/auth/anonymous-token``: free starter tokens, rate-limited per ``X-Client-Id``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from services.nemo_sim import forms
from services.nemo_sim.gate import enter
from services.nemo_sim.replies import code_error, ok
from services.nemo_sim.state import RateLimited

router = APIRouter()
MAX_CLIENT_ID = 64


def iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.post("/api/auth/anonymous-token")
async def anonymous_token(request: Request) -> Response:
    sim = enter(request, "anonymous_token")
    client_id = request.headers.get("x-client-id", "").strip()
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        return code_error(400, "X-Client-Id header is required", 400, fields=sim.error_fields)
    try:
        token, user, expires_at = sim.mint_anonymous(client_id)
    except RateLimited as exc:
        return code_error(
            429,
            "too many anonymous tokens for this client, retry later",
            429,
            fields=sim.error_fields,
            headers=forms.retry_after(exc.retry_after, sim.config.retry_after_form),
        )
    expires = iso_utc(expires_at)
    return ok({"token": token, "user_id": user.user_id, "expires_at": expires, "credits": user.available})

"""Reading JSON request bodies the way the upstream does: an error envelope, never FastAPI's 422."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from services.nemo_sim.replies import SimReply, code_error


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object (``{}`` for an empty optional body); HTTP 400 code 400 otherwise."""
    raw = await request.body()
    if not raw.strip() and not required:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SimReply(
            code_error(400, "request body must be a JSON object", 400, fields=request.app.state.sim.error_fields)
        )
    return body

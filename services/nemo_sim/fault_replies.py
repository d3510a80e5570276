"""What a fault of a replacing kind answers instead of the real reply.

The ``/api/`` family answers in its code envelope, the render family in ``{"success":false,…}``, a 502 in a
gateway's HTML. ``token_expired`` and ``session_lost`` answer in the forms the config picks (``forms.py``),
like the real conditions; ``code_1002`` keeps the default form. ``json_error`` is a JSON envelope where a
stream was expected. ``reset`` answers nothing at all (``reset.py``).
"""

from __future__ import annotations

from starlette.responses import HTMLResponse, Response

from services.nemo_sim import forms
from services.nemo_sim.config import SimConfig
from services.nemo_sim.faults import RENDER_ENDPOINTS, Fault
from services.nemo_sim.replies import code_error, render_error, session_not_found_sse
from services.nemo_sim.reset import ResetResponse

# kind -> (HTTP status, upstream code, message)
_REPLIES: dict[str, tuple[int, int, str]] = {
    "http_429": (429, 429, "too many requests, retry later"),
    "http_500": (500, 500, "internal server error"),
    "http_503": (503, 503, "service unavailable"),
    "http_401": (401, 1011, "invalid token"),
    "code_1001": (200, 1001, "token expired"),
    "code_1010": (200, 1010, "token expired"),
    "code_1011": (200, 1011, "invalid token"),
    "code_1002": (200, 1002, "session not found"),
    "code_2001": (200, 2001, "insufficient credits"),
    "code_4001": (200, 4001, "unsupported file type"),
    "code_4002": (200, 4002, "file too large"),
    "http_402": (402, 402, "free plan export blocked: upgrade to export"),
}
# A gateway in front of the backend answers 502 in HTML, not in the backend's envelope.
BAD_GATEWAY_HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
_5XX = ("http_500", "http_502", "http_503")


def fault_reply(fault: Fault, endpoint: str, config: SimConfig) -> Response:
    """The reply that replaces the real one for ``fault`` firing on ``endpoint``."""
    spec, kind = fault.spec, fault.spec.kind
    if kind == "http_5xx":
        kind = fault.pick(_5XX)
    if kind == "reset":
        return ResetResponse()
    if kind == "token_expired":
        return forms.token_expired(config)
    if kind == "session_lost":
        return forms.session_lost(config, endpoint)
    if kind == "json_error":
        code = spec.code if spec.code is not None else 500
        return code_error(code, "the agent is temporarily unavailable, retry later", fields=config.error_fields)
    if kind == "http_502":
        return HTMLResponse(BAD_GATEWAY_HTML, status_code=502)
    status, code, message = _REPLIES[kind]
    headers = None
    if kind == "http_429" or (kind == "http_503" and spec.retry_after is not None):
        wait = spec.retry_after if spec.retry_after is not None else 30
        headers = forms.retry_after(wait, spec.retry_after_form or config.retry_after_form)
    if endpoint in RENDER_ENDPOINTS:
        return render_error(status, message, code=code, headers=headers, fields=config.error_fields)
    if endpoint == "run_sse" and kind == "code_1002":
        return session_not_found_sse()
    return code_error(code, message, status, fields=config.error_fields, headers=headers)

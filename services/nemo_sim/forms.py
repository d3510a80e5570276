"""The documented forms of one condition, picked by the config: an expired token, a lost session, a fresh
session's empty draft, ``Retry-After``, a heartbeat. Real conditions and the faults that imitate them use the
same functions, so a scenario's form holds for both.
"""

from __future__ import annotations

import math
import time
from email.utils import formatdate
from typing import Any

from starlette.responses import Response

from services.nemo_sim.config import RetryAfterForm, SimConfig
from services.nemo_sim.replies import code_error, render_error, session_not_found_sse

# The gateway's heartbeats: a comment line, an empty data line, a typed event.
HEARTBEAT_FORMS: dict[str, bytes] = {
    "comment": b": ping\n\n",
    "empty_data": b"data:\n\n",
    "typed": b'data: {"type":"heartbeat"}\n\n',
}
HEARTBEATS = tuple(HEARTBEAT_FORMS.values())  # "rotate" uses them in this order
_EXPIRED: dict[str, tuple[int, int]] = {  # form -> (HTTP status, code)
    "code_1001": (200, 1001),
    "code_1010": (200, 1010),
    "code_1011": (200, 1011),
    "http_401": (401, 401),
}


def token_expired(config: SimConfig) -> Response:
    """An expired token, in the form ``expired_token_form`` picks (a code envelope, or HTTP 401)."""
    status, code = _EXPIRED[config.expired_token_form]
    return code_error(code, "token expired", status, fields=config.error_fields)


def session_lost(config: SimConfig, endpoint: str) -> Response:
    """A session the upstream does not know, in the form ``lost_session_form`` picks.

    ``default``: ADK's HTTP 404 ``{"detail":"Session not found"}`` on ``/run_sse``, code 1002 elsewhere;
    ``code_1002``: code 1002 everywhere (HTTP 200, JSON, also on ``/run_sse``); ``http_404``: ADK's 404
    everywhere.
    """
    form = config.lost_session_form
    if form == "http_404" or (form == "default" and endpoint == "run_sse"):
        return session_not_found_sse()
    if endpoint == "render_submit":
        return render_error(200, "session not found", code=1002, fields=config.error_fields)
    return code_error(1002, "session not found", fields=config.error_fields)


def empty_draft(config: SimConfig) -> Any:
    """What the state says for a session that has no edit yet: ``null``, ``{}``, ``{"t": []}``, or tracks
    without segments (not export-ready either)."""
    form = config.empty_draft_form
    if form == "empty_tracks":
        return {"t": [{"tt": 0, "n": "Video", "sg": []}, {"tt": 1, "n": "BGM", "sg": []}], "d": 0}
    return {"null": None, "empty_object": {}, "no_tracks": {"t": []}}[form]


def retry_after(seconds: float, form: RetryAfterForm) -> dict[str, str]:
    """The ``Retry-After`` header: whole seconds (a fraction is passed on as written), an HTTP date, or none."""
    if form == "absent":
        return {}
    if form == "http_date":
        return {"Retry-After": formatdate(time.time() + math.ceil(seconds), usegmt=True)}
    value = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    return {"Retry-After": value}


def heartbeat(config: SimConfig, beat: int) -> bytes:
    """The ``beat``-th heartbeat of a run: the configured form, or the three in turn."""
    form = config.heartbeat_form
    return HEARTBEATS[beat % len(HEARTBEATS)] if form == "rotate" else HEARTBEAT_FORMS[form]

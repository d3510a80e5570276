"""What every upstream request passes first: counting, armed faults, the bearer token, the call rate.

Order: count the request; fire an armed fault (before auth, like a gateway in front of the backend); check
the token (unknown: HTTP 401 code 1011; expired: the configured form); take a call from the token's bucket
(HTTP 429 past ``rps_per_token``). The stream and render slots are taken by their endpoints, just before they
accept.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from services.nemo_sim import forms
from services.nemo_sim.accounting import DROP_FLAG
from services.nemo_sim.capacity import Refused, TokenUse, token_key
from services.nemo_sim.fault_replies import fault_reply
from services.nemo_sim.faults import RENDER_ENDPOINTS
from services.nemo_sim.records import User
from services.nemo_sim.replies import SimReply, code_error, render_error
from services.nemo_sim.reset import RESET_AFTER_ACCEPT
from services.nemo_sim.state import SimState

TOKEN_KEY = "sim_token_key"
ENDPOINT_KEY = "sim_endpoint"


def sim_of(request: Request) -> SimState:
    return request.app.state.sim


def enter(request: Request, endpoint: str, session_id: str | None = None) -> SimState:
    """Count the request, then fire an armed fault for it (a reply-replacing fault ends the request)."""
    sim = sim_of(request)
    sim.ledger.track(request, endpoint, session_id)
    setattr(request.state, ENDPOINT_KEY, endpoint)
    fault = sim.faults.take(endpoint, session_id)
    if fault is not None:
        kind = fault.spec.kind
        sim.ledger.fault_fired(request, endpoint, kind)
        if kind == "drop":
            setattr(request.state, DROP_FLAG, True)
        elif kind == "reset_after_accept":
            setattr(request.state, RESET_AFTER_ACCEPT, True)
        else:
            raise SimReply(fault_reply(fault, endpoint, sim.config))
    return sim


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def authenticate(request: Request, sim: SimState) -> User:
    """The token's user, after one call is taken from its bucket. Unknown or malformed: HTTP 401 code 1011;
    expired: ``expired_token_form``; past ``rps_per_token``: HTTP 429."""
    token = bearer_token(request)
    record = sim.tokens.get(token) if token else None
    user = sim.users.get(record.user_id) if record is not None else None
    if token is None or record is None or user is None:
        raise SimReply(code_error(1011, "invalid token", 401, fields=sim.error_fields))
    if record.expired(time.time()):
        raise SimReply(forms.token_expired(sim.config))
    key = token_key(token)
    setattr(request.state, TOKEN_KEY, key)
    try:
        sim.capacity.admit_call(sim.capacity.use(key, user.user_id), sim.config)
    except Refused as exc:
        raise SimReply(refusal(request, sim, exc)) from None
    return user


def token_use(request: Request, sim: SimState, user: User) -> TokenUse:
    """The capacity record of the token this (authenticated) request carries."""
    return sim.capacity.use(getattr(request.state, TOKEN_KEY), user.user_id)


def refusal(request: Request, sim: SimState, exc: Refused) -> Response:
    """HTTP 429 for a capacity limit, in the endpoint family's envelope, with ``Retry-After``."""
    what = {"rate": "calls per second", "streams": "concurrent streams", "renders": "concurrent renders"}[exc.kind]
    message = f"rate limited: too many {what} for this token (limit {exc.limit:g}), retry later"
    headers = forms.retry_after(exc.retry_after, sim.config.retry_after_form)
    entry = getattr(request.state, "sim_entry", None)
    if entry is not None:
        entry["capacity"] = exc.kind
    if getattr(request.state, ENDPOINT_KEY, "") in RENDER_ENDPOINTS:
        return render_error(429, message, code=429, headers=headers, fields=sim.error_fields)
    return code_error(429, message, 429, fields=sim.error_fields, headers=headers)


def enter_authenticated(request: Request, endpoint: str, session_id: str | None = None) -> tuple[SimState, User]:
    sim = enter(request, endpoint, session_id)
    return sim, authenticate(request, sim)

"""What every upstream request passes first: counting, armed faults, then the bearer token."""

from __future__ import annotations

import time

from starlette.requests import Request

from services.nemo_sim.accounting import DROP_FLAG
from services.nemo_sim.faults import fault_reply
from services.nemo_sim.records import User
from services.nemo_sim.replies import SimReply, code_error
from services.nemo_sim.state import SimState


def sim_of(request: Request) -> SimState:
    return request.app.state.sim


def enter(request: Request, endpoint: str, session_id: str | None = None) -> SimState:
    """Count the request, then fire an armed fault for it (a reply-replacing fault ends the request)."""
    sim = sim_of(request)
    sim.ledger.track(request, endpoint, session_id)
    spec = sim.faults.take(endpoint, session_id)
    if spec is not None:
        if spec.kind == "drop":
            setattr(request.state, DROP_FLAG, True)
        else:
            raise SimReply(fault_reply(spec, sim.error_fields))
    return sim


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def authenticate(request: Request, sim: SimState) -> User:
    """The token's user. Unknown or malformed: HTTP 401 code 1011; expired: HTTP 200 code 1001."""
    token = bearer_token(request)
    record = sim.tokens.get(token) if token else None
    user = sim.users.get(record.user_id) if record is not None else None
    if record is None or user is None:
        raise SimReply(code_error(1011, "invalid token", 401, fields=sim.error_fields))
    if record.expired(time.time()):
        raise SimReply(code_error(1001, "token expired", fields=sim.error_fields))
    return user


def enter_authenticated(request: Request, endpoint: str, session_id: str | None = None) -> tuple[SimState, User]:
    sim = enter(request, endpoint, session_id)
    return sim, authenticate(request, sim)

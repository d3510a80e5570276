"""Request counters and the recent-request log behind ``/_sim/counters`` and ``/_sim/requests``.

Handlers call ``Ledger.track`` once per request; ``LedgerMiddleware`` (pure ASGI, so streams pass through
untouched) fills in the response status, cuts the connection of a request marked for a ``drop`` fault after
the status line, and resets the one marked ``reset_after_accept`` before its first byte.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.nemo_sim.reset import RESET_AFTER_ACCEPT, note, reset_connection

ENDPOINTS = (
    "anonymous_token",
    "session",
    "upload",
    "run_sse",
    "state",
    "credits",
    "render_submit",
    "render_status",
    "render_cancel",
    "render_download",
    "render_output",
)
DROP_FLAG = "sim_drop"
CUT_FLAG = "sim_cut"  # the connection was reset: nothing more goes out


def masked_headers(request: Request) -> dict[str, str]:
    headers = dict(request.headers)
    auth = headers.get("authorization")
    if auth is not None:
        scheme = auth.split(" ", 1)[0] if " " in auth else ""
        headers["authorization"] = f"{scheme} ***".strip()
    return headers


def mark_dropped(scope: Scope) -> None:
    note(scope, "dropped", True)


class Ledger:
    def __init__(self, keep: int = 2000) -> None:
        self.endpoints: Counter[str] = Counter()
        self.sessions: dict[str, Counter[str]] = {}
        self.in_flight_streams = 0
        self.faults: Counter[tuple[str, str]] = Counter()  # (endpoint, kind) -> times fired
        self.log: deque[dict[str, Any]] = deque(maxlen=keep)

    def track(self, request: Request, endpoint: str, session_id: str | None = None) -> None:
        """Count one request (also per session when it names one) and log it."""
        self.endpoints[endpoint] += 1
        if session_id:
            self.sessions.setdefault(session_id, Counter())[endpoint] += 1
        entry = {
            "endpoint": endpoint,
            "method": request.method,
            "path": request.url.path,
            "status": None,
            "session_id": session_id,
            "headers": masked_headers(request),
        }
        self.log.append(entry)
        request.state.sim_entry = entry

    def fault_fired(self, request: Request | None, endpoint: str, kind: str) -> None:
        self.faults[(endpoint, kind)] += 1
        entry = getattr(request.state, "sim_entry", None) if request is not None else None
        if entry is not None:
            entry["fault"] = kind

    def faults_fired(self) -> dict[str, Any]:
        by_kind: Counter[str] = Counter()
        by_endpoint: dict[str, dict[str, int]] = {}
        for (endpoint, kind), count in sorted(self.faults.items()):
            by_kind[kind] += count
            by_endpoint.setdefault(endpoint, {})[kind] = count
        return {"total": sum(by_kind.values()), "by_kind": dict(by_kind), "by_endpoint": by_endpoint}

    def snapshot(self) -> dict[str, Any]:
        return {
            "endpoints": {name: self.endpoints.get(name, 0) for name in ENDPOINTS},
            "sessions": {sid: dict(counts) for sid, counts in self.sessions.items()},
            "in_flight_streams": self.in_flight_streams,
            "faults_fired": self.faults_fired(),
        }

    def recent(self, limit: int) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        return list(self.log)[-limit:]


class LedgerMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_through(message: Message) -> None:
            if state.get(CUT_FLAG):
                return
            if message["type"] == "http.response.start":
                if state.get(RESET_AFTER_ACCEPT):  # the work is done; the reply never leaves
                    state[CUT_FLAG] = True
                    note(scope, "reset", "after_accept")
                    await reset_connection(scope)
                    return
                note(scope, "status", message["status"])
            elif state.get(DROP_FLAG):
                mark_dropped(scope)
                return  # swallow the body: the server returns with the response unfinished
            await send(message)

        await self.app(scope, receive, send_through)
        if scope.get("method") not in ("GET", "HEAD"):
            scope["app"].state.sim.touch()  # it may have changed what the state file keeps

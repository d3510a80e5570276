"""A thin test-side client for the simulator's admin API under ``/_sim/``, and ``VARIANTS``: the named
upstream behaviours (each a config patch plus faults) that the variant-matrix tests run the whole flow through.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx

# Faults that hit a typical job once each: its first message, its first render submit, one status poll.
_ON_MESSAGE = {"endpoint": "run_sse", "times": 1}
_ON_SUBMIT = {"endpoint": "render_submit", "times": 1}
_ON_STATUS = {"endpoint": "render_status", "times": 1}


def _expired(form: str) -> dict[str, Any]:
    faults = [{**_ON_MESSAGE, "kind": "token_expired"}, {**_ON_STATUS, "kind": "token_expired"}]
    return {"config": {"expired_token_form": form}, "faults": faults}


def _lost(form: str) -> dict[str, Any]:
    return {"config": {"lost_session_form": form}, "faults": [{**_ON_MESSAGE, "kind": "session_lost"}]}


def _rate_limited(form: str) -> dict[str, Any]:
    spec = {"kind": "http_429", "retry_after": 1, "retry_after_form": form}
    return {"config": {}, "faults": [{**_ON_MESSAGE, **spec}, {**_ON_SUBMIT, **spec}, {**_ON_STATUS, **spec}]}


# name -> {"config": PATCH /_sim/config body, "faults": [POST /_sim/faults bodies], "chaos": preset body}.
# The default behaviour is "default"; every other entry is one documented variant of UPSTREAM.md.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"config": {}, "faults": []},
    "render_shape_a": {"config": {"render_shape": "A"}, "faults": []},
    "render_shape_b": {"config": {"render_shape": "B"}, "faults": []},
    "flat_events": {"config": {"legacy_events": True}, "faults": []},
    "heartbeat_comment": {"config": {"heartbeat_form": "comment"}, "faults": []},
    "heartbeat_empty_data": {"config": {"heartbeat_form": "empty_data"}, "faults": []},
    "heartbeat_typed": {"config": {"heartbeat_form": "typed"}, "faults": []},
    "silent_streams": {"config": {"silent_share": 1.0}, "faults": []},
    "error_text_in_msg": {
        "config": {"error_field": "msg"},
        "faults": [{**_ON_MESSAGE, "kind": "http_429", "retry_after": 1}],
    },
    "token_expired_1001": _expired("code_1001"),
    "token_expired_1010": _expired("code_1010"),
    "token_expired_1011": _expired("code_1011"),
    "token_expired_http_401": _expired("http_401"),
    "session_lost_default": _lost("default"),
    "session_lost_1002": _lost("code_1002"),
    "session_lost_http_404": _lost("http_404"),
    "empty_draft_null": {"config": {"empty_draft_form": "null"}, "faults": []},
    "empty_draft_object": {"config": {"empty_draft_form": "empty_object"}, "faults": []},
    "empty_draft_no_tracks": {"config": {"empty_draft_form": "no_tracks"}, "faults": []},
    "empty_draft_empty_tracks": {"config": {"empty_draft_form": "empty_tracks"}, "faults": []},
    "json_error_instead_of_stream": {"config": {}, "faults": [{**_ON_MESSAGE, "kind": "json_error"}]},
    "rate_limited_seconds": _rate_limited("seconds"),
    "rate_limited_http_date": _rate_limited("http_date"),
    "rate_limited_no_retry_after": _rate_limited("absent"),
    "server_errors": {
        "config": {},
        "faults": [
            {"endpoint": "session", "kind": "http_500", "times": 1},
            {**_ON_MESSAGE, "kind": "http_502"},
            {**_ON_SUBMIT, "kind": "http_503"},
            {**_ON_STATUS, "kind": "http_500"},
        ],
    },
    "reset_before_first_byte": {
        "config": {},
        "faults": [
            {"endpoint": "session", "kind": "reset", "times": 1},
            {**_ON_MESSAGE, "kind": "reset"},
            {**_ON_SUBMIT, "kind": "reset"},
            {**_ON_STATUS, "kind": "reset"},
        ],
    },
    "reset_after_accept": {
        "config": {},
        "faults": [
            {"endpoint": "session", "kind": "reset_after_accept", "times": 1},
            {**_ON_MESSAGE, "kind": "reset_after_accept"},
            {**_ON_SUBMIT, "kind": "reset_after_accept"},
        ],
    },
    "drop_mid_stream": {"config": {}, "faults": [{**_ON_MESSAGE, "kind": "drop", "after_events": 1}]},
    "stream_error_event": {"config": {}, "faults": [{**_ON_MESSAGE, "kind": "stream_error"}]},
    "chaos": {"config": {}, "faults": [], "chaos": {"rate": 0.1, "retry_after": 1}},
}


def token_key(token: str) -> str:
    """How ``/_sim/counters`` names a token (never the token itself)."""
    return "tok_" + hashlib.sha256(token.encode()).hexdigest()[:12]


class SimAdmin:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=10.0)

    def _ok(self, resp: httpx.Response) -> Any:
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def reset(self, **config: Any) -> None:
        """Forget all state, counters and faults; then apply ``config`` on top of the start config."""
        self._ok(self.http.post("/_sim/reset"))
        if config:
            self.configure(**config)

    def configure(self, **config: Any) -> dict[str, Any]:
        return self._ok(self.http.patch("/_sim/config", json=config))

    def config(self) -> dict[str, Any]:
        return self._ok(self.http.get("/_sim/config"))

    def fault(self, endpoint: str, kind: str, times: int = 1, **extra: Any) -> dict[str, Any]:
        return self._ok(
            self.http.post("/_sim/faults", json={"endpoint": endpoint, "kind": kind, "times": times, **extra})
        )

    def arm(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Arm a fault given as the raw ``POST /_sim/faults`` body (``endpoints``, ``rate``, ...)."""
        return self._ok(self.http.post("/_sim/faults", json=spec))

    def fault_at_rate(self, endpoints: str | list[str], kind: str, rate: float, **extra: Any) -> dict[str, Any]:
        """A fault firing on a ``rate`` share of the calls to ``endpoints`` (a class name or a list)."""
        return self.arm({"endpoints": endpoints, "kind": kind, "rate": rate, **extra})

    def chaos(self, rate: float = 0.1, **extra: Any) -> dict[str, Any]:
        """Arm every retryable class of fault at ``rate`` (see the simulator's README)."""
        return self._ok(self.http.post("/_sim/faults/chaos", json={"rate": rate, **extra}))

    def apply_variant(self, name: str) -> None:
        """Configure and arm the named entry of ``VARIANTS`` (on top of the current state)."""
        variant = VARIANTS[name]
        if variant["config"]:
            self.configure(**variant["config"])
        for spec in variant["faults"]:
            self.arm(spec)
        if "chaos" in variant:
            self.chaos(**variant["chaos"])

    def clear_faults(self) -> None:
        self._ok(self.http.delete("/_sim/faults"))

    def counters(self) -> dict[str, Any]:
        return self._ok(self.http.get("/_sim/counters"))

    def endpoint_count(self, endpoint: str) -> int:
        return int(self.counters()["endpoints"].get(endpoint, 0))

    def session_count(self, session_id: str, endpoint: str) -> int:
        return int(self.counters()["sessions"].get(session_id, {}).get(endpoint, 0))

    def session(self, session_id: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/_sim/sessions/{session_id}"))

    def lose_session(self, session_id: str) -> None:
        """Make the upstream forget the session (every later call naming it gets "not found")."""
        self._ok(self.http.delete(f"/_sim/sessions/{session_id}"))

    def summary(self) -> dict[str, Any]:
        """Totals: messages, edits, renders, duplicate messages and renders, sessions per token, faults."""
        return self.counters()["summary"]

    def activity(self, session_id: str) -> dict[str, Any]:
        """One session's messages sent, edits applied, renders submitted and duplicates."""
        return self.counters()["per_session"][session_id]

    def token_use(self, token: str) -> dict[str, Any]:
        """A token's sessions created, current/peak streams and renders, capacity 429s by class."""
        return self.counters()["per_token"][token_key(token)]

    def assert_no_duplicates(self) -> None:
        """No session got the same message twice or rendered an unchanged draft twice."""
        summary = self.summary()
        assert (summary["duplicate_messages"], summary["duplicate_renders"]) == (0, 0), summary

    def requests(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._ok(self.http.get("/_sim/requests", params={"limit": limit}))

    def set_credits(self, available: int, user_id: str | None = None) -> None:
        self._ok(self.http.post("/_sim/credits", json={"available": available, "user_id": user_id}))

    def add_token(self, token: str, credits: int = 100, user_id: str | None = None) -> dict[str, Any]:
        return self._ok(self.http.post("/_sim/tokens", json={"token": token, "credits": credits, "user_id": user_id}))

    def expire_tokens(self) -> None:
        self._ok(self.http.post("/_sim/tokens/expire"))

    def faults(self) -> list[dict[str, Any]]:
        """The faults still armed, each with its ``remaining`` count."""
        return self._ok(self.http.get("/_sim/faults"))["armed"]

    def render(self, render_id: str) -> dict[str, Any]:
        """A render as the simulator sees it: session, draft_version, status, progress, fails, and ``output``
        (``size``, ``duration``, ``sha256`` of the file it serves)."""
        return self._ok(self.http.get(f"/_sim/renders/{render_id}", timeout=120.0))

    def render_sha256(self, render_id: str) -> str:
        """The sha256 of the bytes the render's download endpoint and output URL serve."""
        return str(self.render(render_id)["output"]["sha256"])

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no agent run is in progress (runs outlive their streams)."""
        deadline = time.monotonic() + timeout
        while self.counters()["runs_in_progress"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"agent runs still in progress after {timeout}s")
            time.sleep(0.02)

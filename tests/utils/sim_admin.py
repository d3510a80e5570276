"""A thin test-side client for the simulator's admin API under ``/_sim/``."""

from __future__ import annotations

import time
from typing import Any

import httpx


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

"""Raw-httpx calls in the upstream's own shapes, and a tiny SSE parser: the tests' view of the wire.

Deliberately independent of reelmill's client (``shared/nemo``), so the simulator is checked on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from shared.nemo.profiles import KAPWING, SkillProfile

APP = "nemo_agent"


@dataclass
class Frame:
    kind: str  # "comment" or "data"
    value: str

    def json(self) -> Any:
        return json.loads(self.value)


def parse_sse(text: str) -> list[Frame]:
    """Frames of an SSE body: a comment block, or the joined ``data:`` lines of a block."""
    frames = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
        if data:
            frames.append(Frame("data", "\n".join(data)))
        elif lines and lines[0].startswith(":"):
            frames.append(Frame("comment", lines[0][1:].strip()))
    return frames


def events(frames: list[Frame]) -> list[dict[str, Any]]:
    """The JSON events among ``frames`` (heartbeats of every form left out)."""
    out = []
    for f in frames:
        if f.kind == "data" and f.value.strip():
            doc = f.json()
            if doc != {"type": "heartbeat"}:
                out.append(doc)
    return out


def texts(evs: list[dict[str, Any]]) -> list[str]:
    found = []
    for ev in evs:
        if ev.get("type") == "text":
            found.append(ev["content"])
        for part in (ev.get("content") or {}).get("parts", []) if isinstance(ev.get("content"), dict) else []:
            if "text" in part:
                found.append(part["text"])
    return found


def message_body(session_id: str, text: str, camel: bool = False) -> dict[str, Any]:
    if camel:
        return {
            "appName": APP,
            "userId": "me",
            "sessionId": session_id,
            "newMessage": {"role": "user", "parts": [{"text": text}]},
            "streaming": False,
        }
    parts = [{"text": text}]
    return {"app_name": APP, "user_id": "me", "session_id": session_id, "new_message": {"parts": parts}}


class Upstream:
    def __init__(self, base_url: str, profile: SkillProfile = KAPWING, token: str | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15.0)
        self.profile = profile
        self.token = token

    def close(self) -> None:
        self.http.close()

    def headers(self, attribution: bool = True) -> dict[str, str]:
        headers = self.profile.attribution_headers() if attribution else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def mint(self, client_id: str = "test-client") -> dict[str, Any]:
        resp = self.http.post("/api/auth/anonymous-token", headers={"X-Client-Id": client_id})
        resp.raise_for_status()
        data = resp.json()["data"]
        self.token = data["token"]
        return data

    def new_session(self) -> str:
        body = {"task_name": "project", "language": "en"}
        resp = self.http.post(f"/api/tasks/me/with-session/{APP}", headers=self.headers(), json=body)
        return resp.json()["data"]["session_id"]

    def send(self, session_id: str, text: str, camel: bool = False) -> httpx.Response:
        """POST /run_sse and read the whole stream."""
        headers = {**self.headers(), "Accept": "text/event-stream"}
        return self.http.post("/run_sse", headers=headers, json=message_body(session_id, text, camel))

    def message(self, session_id: str, text: str, camel: bool = False) -> list[Frame]:
        resp = self.send(session_id, text, camel)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/event-stream")
        return parse_sse(resp.text)

    def state(self, session_id: str) -> httpx.Response:
        return self.http.get(f"/api/state/{APP}/me/{session_id}/latest", headers=self.headers())

    def draft(self, session_id: str) -> dict[str, Any] | None:
        return self.state(session_id).json()["data"]["state"]["draft"]

    def credits_reply(self) -> httpx.Response:
        return self.http.get("/api/credits/balance/simple", headers=self.headers())

    def credits(self) -> dict[str, int]:
        return self.credits_reply().json()["data"]

    def upload(self, session_id: str, files: list[tuple[str, Any]]) -> httpx.Response:
        multipart = [("files", (name, content)) for name, content in files]
        url = f"/api/upload-video/{APP}/me/{session_id}"
        return self.http.post(url, headers=self.headers(), files=multipart)

    def upload_urls(self, session_id: str, urls: list[str]) -> httpx.Response:
        return self.http.post(
            f"/api/upload-video/{APP}/me/{session_id}",
            headers=self.headers(),
            json={"urls": urls, "source_type": "url"},
        )

    def submit(self, render_id: str, session_id: str, draft: Any, attribution: bool = True) -> httpx.Response:
        output = {"format": "mp4", "quality": "high"}
        body = {"id": render_id, "sessionId": session_id, "draft": draft, "output": output}
        return self.http.post("/api/render/proxy/lambda", headers=self.headers(attribution), json=body)

    def render_status(self, render_id: str) -> httpx.Response:
        return self.http.get(f"/api/render/proxy/lambda/{render_id}", headers=self.headers())

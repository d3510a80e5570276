"""Sessions, their state, the credit balance, and ownership."""

from __future__ import annotations

from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin


def test_session_shape(sim: SimAdmin, up: Upstream) -> None:
    body = {"task_name": "project", "language": "en"}
    resp = up.http.post("/api/tasks/me/with-session/nemo_agent", headers=up.headers(), json=body)
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 0
    data = body["data"]
    assert data["task_id"].startswith("task_")
    assert len(data["session_id"]) == 19 and data["session_id"].isdigit()
    assert data["user_id"].startswith("anon_")


def test_session_body_and_language_are_optional(sim: SimAdmin, up: Upstream) -> None:
    resp = up.http.post("/api/tasks/me/with-session/nemo_agent", headers=up.headers())
    assert resp.json()["code"] == 0


def test_new_session_state_is_empty(sim: SimAdmin, up: Upstream, sid: str) -> None:
    body = up.state(sid).json()
    assert body["code"] == 0
    data = body["data"]
    assert data["session_id"] == sid and data["task_name"] == "project"
    assert data["task_id"].startswith("task_")
    assert data["state"] == {
        "draft": None,
        "video_infos": [],
        "generated_media": [],
        "canvas_config": {"width": 1080, "height": 1920},
    }


def test_unknown_session_state_is_1002(sim: SimAdmin, up: Upstream) -> None:
    resp = up.state("1234567890123456789")
    assert resp.status_code == 200
    assert resp.json() == {"code": 1002, "message": "session not found"}


def test_another_users_session_is_not_found(sim: SimAdmin, up: Upstream, sid: str) -> None:
    other = Upstream(sim.base_url)
    other.mint("someone-else")
    assert other.state(sid).json()["code"] == 1002
    resp = other.send(sid, "hi")
    assert (resp.status_code, resp.json()) == (404, {"detail": "Session not found"})
    assert other.upload_urls(sid, ["https://example.com/a.mp4"]).json()["code"] == 1002


def test_credits_shape(sim: SimAdmin, up: Upstream) -> None:
    resp = up.http.get("/api/credits/balance/simple", headers=up.headers())
    assert resp.json() == {"code": 0, "data": {"available": 100, "frozen": 0, "total": 100}}
    sim.set_credits(3)
    assert up.credits() == {"available": 3, "frozen": 0, "total": 3}

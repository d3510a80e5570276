"""The render family: submit, status in both shapes, failure, cancel, download."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

CLIP = {"s": 0, "d": 5000, "n": "clip", "src": "/mnt/userdata/a.mp4"}
META = {"title": "T", "width": 1080, "height": 1920}
DRAFT = {"t": [{"tt": 0, "n": "Video", "sg": [CLIP]}], "d": 5000, "m": META}


def _status(up: Upstream, render_id: str) -> dict[str, Any]:
    """Status and progress from either shape."""
    doc = up.render_status(render_id).json()
    return doc.get("data", doc)


def test_submit_then_pending_processing_completed(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=50.0, render_shape="A")  # 0.5 s at 0.01
    resp = up.submit("render_1", sid, DRAFT)
    assert resp.json() == {"success": True, "data": {"id": "render_1", "status": "pending", "progress": 5}}
    seen: list[tuple[str, int]] = []

    def finished() -> bool:
        data = _status(up, "render_1")
        seen.append((data["status"], data["progress"]))
        return data["status"] == "completed"

    wait_until(finished, every=0.01)
    statuses = [s for s, _ in seen]
    assert statuses[0] == "pending" and "processing" in statuses and statuses[-1] == "completed"
    assert statuses.index("processing") > statuses.index("pending")
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(5 < p < 100 for s, p in seen if s == "processing")
    assert sim.session(sid)["renders"] == ["render_1"]


def test_shape_a_and_b(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0, render_shape="A")
    up.submit("render_a", sid, DRAFT)
    a = up.render_status("render_a").json()
    assert a["success"] is True
    assert set(a["data"]) == {"id", "status", "progress", "outputUrl", "createdAt", "completedAt"}
    assert a["data"]["status"] == "completed" and a["data"]["completedAt"] >= a["data"]["createdAt"] > 1e12
    sim.configure(render_shape="B")
    b = up.render_status("render_a").json()
    assert set(b) == {"taskId", "status", "progress", "output"} and b["taskId"] == "render_a"
    assert set(b["output"]) == {"url", "duration", "size"} and b["output"]["duration"] == 5.0
    assert b["output"]["url"] == a["data"]["outputUrl"]
    download = httpx.get(b["output"]["url"])
    assert len(download.content) == b["output"]["size"]


def test_shape_both_alternates(sim: SimAdmin, up: Upstream, sid: str) -> None:
    up.submit("render_x", sid, DRAFT)
    shapes = ["A" if "success" in up.render_status("render_x").json() else "B" for _ in range(4)]
    assert shapes in (["A", "B", "A", "B"], ["B", "A", "B", "A"])


def test_shape_b_before_completion_has_no_output(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_shape="B")
    up.submit("render_b", sid, DRAFT)
    doc = up.render_status("render_b").json()
    assert doc["status"] in ("pending", "processing") and doc["output"] is None


def test_failure_share_one(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0, render_fail_share=1.0, render_shape="A")
    up.submit("render_f", sid, DRAFT)
    data = up.render_status("render_f").json()["data"]
    assert data["status"] == "failed" and data["error"] and data["outputUrl"] is None
    assert up.http.get("/api/render/proxy/render_f/download", headers=up.headers()).status_code == 409


def test_submit_errors(sim: SimAdmin, up: Upstream, sid: str) -> None:
    assert up.submit("render_d", sid, DRAFT).json()["success"] is True
    dup = up.submit("render_d", sid, DRAFT)
    assert dup.status_code == 409
    assert dup.json() == {"success": False, "code": 409, "message": "render id already exists"}
    unknown = up.submit("render_u", "1111111111111111111", DRAFT)
    assert unknown.json() == {"success": False, "code": 1002, "message": "session not found"}
    for empty in (None, {}, {"t": []}, {"t": [{"tt": 0, "sg": []}]}):
        resp = up.submit("render_e", sid, empty)
        assert (resp.status_code, resp.json()) == (400, {"success": False, "message": "draft is empty"})


def test_submit_without_attribution_is_402(sim: SimAdmin, up: Upstream, sid: str) -> None:
    resp = up.submit("render_p", sid, DRAFT, attribution=False)
    assert resp.status_code == 402
    assert resp.json()["code"] == 402 and resp.json()["message"].startswith("free plan export blocked: ")
    partial = {**up.headers(), "X-Skill-Platform": ""}
    body = {"id": "render_p", "sessionId": sid, "draft": DRAFT}
    assert up.http.post("/api/render/proxy/lambda", headers=partial, json=body).status_code == 402
    assert up.render_status("render_p").status_code == 404  # nothing was created


def test_unknown_render_is_404(sim: SimAdmin, up: Upstream) -> None:
    resp = up.render_status("render_nope")
    assert (resp.status_code, resp.json()) == (404, {"success": False, "message": "render not found"})
    cancel = up.http.post("/api/render/proxy/lambda/render_nope/cancel", headers=up.headers())
    assert cancel.status_code == 404


def test_cancel_stays_canceled(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=20.0)
    up.submit("render_c", sid, DRAFT)
    resp = up.http.post("/api/render/proxy/lambda/render_c/cancel", headers=up.headers())
    assert resp.json() == {"success": True, "data": {"id": "render_c", "status": "canceled"}}
    time.sleep(0.25)  # past the render's whole duration (0.2 s)
    assert _status(up, "render_c")["status"] == "canceled"
    assert up.http.get("/api/render/proxy/render_c/download", headers=up.headers()).status_code == 409


def test_cancel_after_completion_is_refused(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0)
    up.submit("render_done", sid, DRAFT)
    resp = up.http.post("/api/render/proxy/lambda/render_done/cancel", headers=up.headers())
    assert resp.status_code == 409 and resp.json()["success"] is False


def test_download_is_distinct_per_render(sim: SimAdmin, up: Upstream, sid: str) -> None:
    up.message(sid, "make a video")
    draft = up.draft(sid)
    sim.configure(render_seconds=20.0)
    up.submit("render_1", sid, draft)
    early = up.http.get("/api/render/proxy/render_1/download", headers=up.headers())
    assert early.status_code == 409
    up.message(sid, "add music")
    up.submit("render_2", sid, up.draft(sid))
    wait_until(lambda: _status(up, "render_2")["status"] == "completed")
    bodies = []
    for rid, version in (("render_1", 1), ("render_2", 2)):
        resp = up.http.get(f"/api/render/proxy/{rid}/download", headers=up.headers())
        assert resp.status_code == 200 and resp.headers["content-type"] == "video/mp4"
        assert resp.content[4:8] == b"ftyp" and 1000 < len(resp.content) < 10000
        assert rid.encode() in resp.content and f'"draft_version":{version}'.encode() in resp.content
        bodies.append(resp.content)
    assert bodies[0] != bodies[1]


def test_download_needs_signature_or_owner(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(render_seconds=0.0)
    up.submit("render_s", sid, DRAFT)
    assert httpx.get(f"{sim.base_url}/api/render/proxy/render_s/download").status_code == 401
    forged = httpx.get(f"{sim.base_url}/api/render/proxy/render_s/download?sig=00")
    assert forged.status_code == 401
    other = Upstream(sim.base_url)
    other.mint("other-client")
    assert other.http.get("/api/render/proxy/render_s/download", headers=other.headers()).status_code == 404
    assert other.render_status("render_s").status_code == 404


def test_draft_may_be_sent_as_json_string(sim: SimAdmin, up: Upstream, sid: str) -> None:
    assert up.submit("render_j", sid, json.dumps(DRAFT)).json()["success"] is True

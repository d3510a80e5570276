"""The ``/_sim/`` control panel: config, reset, counters, request log, sessions, credits."""

from __future__ import annotations

import httpx

from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin

FIELDS = {
    "time_scale",
    "message_seconds",
    "edit_at",
    "render_seconds",
    "heartbeat_every_s",
    "silent_share",
    "temporary_issue_share",
    "render_fail_share",
    "render_shape",
    "legacy_events",
    "msg_field",
    "error_field",
    "output_bytes",
    "output_link",
    "output_url_ttl_s",
    "download_link",
    "output_body",
    "heartbeat_form",
    "expired_token_form",
    "lost_session_form",
    "empty_draft_form",
    "retry_after_form",
    "max_streams_per_token",
    "max_renders_per_token",
    "stream_slot_until",
    "rps_per_token",
    "rps_burst",
    "state_file",
    "state_save_delay_s",
    "credits_per_message",
    "anonymous_credits",
    "token_ttl_s",
    "anon_per_client_limit",
    "seed",
}


def test_health(sim: SimAdmin) -> None:
    assert httpx.get(f"{sim.base_url}/_sim/health").json() == {"ok": True}


def test_config_patch_returns_whole_config_and_reset_restores(sim: SimAdmin) -> None:
    start = sim.config()
    assert set(start) >= FIELDS and start["time_scale"] == 0.01  # from the fixture's environment
    patched = sim.configure(silent_share=0.5, render_shape="B")
    assert patched == {**start, "silent_share": 0.5, "render_shape": "B"}
    sim.reset()
    assert sim.config() == start


def test_config_patch_rejects_unknown_and_bad_values(sim: SimAdmin) -> None:
    bad = (
        {"nope": 1},
        {"render_shape": "C"},
        {"silent_share": 2},
        {"time_scale": 0},
        {"heartbeat_form": "smoke"},
        {"expired_token_form": "code_1002"},
        {"max_streams_per_token": -1},
        {"state_file": "/tmp/elsewhere.json"},  # set at start only
    )
    for body in bad:
        assert sim.http.patch("/_sim/config", json=body).status_code == 422
    assert sim.config()["render_shape"] == "both"


def test_reset_drops_state_counters_faults(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("credits", "http_500", times=3)
    sim.reset()
    assert sim.counters()["endpoints"]["session"] == 0 and sim.counters()["sessions"] == {}
    assert sim.http.get("/_sim/faults").json() == {"armed": []}
    assert up.credits_reply().status_code == 401  # the token went with everything else, faults too
    assert sim.http.get(f"/_sim/sessions/{sid}").status_code == 404


def test_counters_per_endpoint_and_session(sim: SimAdmin, up: Upstream, sid: str) -> None:
    up.state(sid)
    up.state(sid)
    up.credits()
    up.upload_urls(sid, ["https://x.invalid/a.mp4"])
    up.message(sid, "hi")
    counters = sim.counters()
    assert set(counters["endpoints"]) == {
        "anonymous_token", "session", "upload", "run_sse", "state", "credits",
        "render_submit", "render_status", "render_cancel", "render_download", "render_output",
    }  # fmt: skip
    endpoints = counters["endpoints"]
    assert (endpoints["anonymous_token"], endpoints["session"], endpoints["state"]) == (1, 1, 2)
    assert (endpoints["credits"], endpoints["upload"], endpoints["run_sse"]) == (1, 1, 1)
    assert counters["sessions"][sid] == {"state": 2, "upload": 1, "run_sse": 1}
    assert counters["in_flight_streams"] == 0


def test_request_log_masks_authorization_and_keeps_attribution(sim: SimAdmin, up: Upstream, sid: str) -> None:
    up.state(sid)
    (last,) = sim.requests(1)
    assert last["endpoint"] == "state" and last["method"] == "GET" and last["status"] == 200
    assert last["path"] == f"/api/state/nemo_agent/me/{sid}/latest"
    assert last["headers"]["authorization"] == "Bearer ***"
    assert up.token not in str(sim.requests(100))
    assert last["headers"]["x-skill-source"] == "ai-video-generator-free-kapwing"
    assert last["headers"]["x-skill-version"] and last["headers"]["x-skill-platform"] == "unknown"


def test_session_view(sim: SimAdmin, up: Upstream, sid: str) -> None:
    view = sim.session(sid)
    assert view["session_id"] == sid and view["user_id"].startswith("anon_")
    assert (view["draft"], view["draft_version"], view["messages"], view["renders"]) == (None, 0, [], [])
    assert view["runs_in_progress"] == 0 and view["files"] == []
    assert sim.http.get("/_sim/sessions/42").status_code == 404


def test_set_credits_for_one_user_or_all(sim: SimAdmin, up: Upstream) -> None:
    other = Upstream(sim.base_url)
    other.mint("another-client")
    sim.set_credits(5, user_id=sim.session(up.new_session())["user_id"])
    assert (up.credits()["available"], other.credits()["available"]) == (5, 100)
    sim.set_credits(0)
    assert (up.credits()["available"], other.credits()["available"]) == (0, 0)
    assert sim.http.post("/_sim/credits", json={"available": 1, "user_id": "anon_nobody"}).status_code == 404

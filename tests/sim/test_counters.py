"""Counters per session (messages sent, edits applied, renders submitted), duplicates made obvious, sessions
per token."""

from __future__ import annotations

from tests.sim.upstream import Upstream
from tests.utils.sim_admin import SimAdmin, token_key
from tests.utils.waiting import wait_until


def _draft(up: Upstream, sid: str) -> dict:
    return up.draft(sid)


def test_per_session_counts(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, render_seconds=1000.0)
    up.message(sid, "make a video")
    up.submit("render_1", sid, _draft(up, sid))
    up.message(sid, "add music")
    up.submit("render_2", sid, _draft(up, sid))
    other = up.new_session()
    activity = sim.activity(sid)
    assert (activity["messages_sent"], activity["edits_applied"], activity["renders_submitted"]) == (2, 2, 2)
    assert activity["duplicate_messages"] == {} and activity["duplicate_renders"] == []
    assert activity["token"] == token_key(up.token) and activity["user_id"].startswith("anon_")
    assert sim.activity(other)["messages_sent"] == 0
    summary = sim.summary()
    assert (summary["sessions"], summary["messages_sent"], summary["renders_submitted"]) == (2, 2, 2)
    assert (summary["duplicate_messages"], summary["duplicate_renders"]) == (0, 0)
    assert summary["sessions_per_token"] == {token_key(up.token): 2}
    assert sim.token_use(up.token)["sessions_created"] == 2
    sim.assert_no_duplicates()


def test_refused_messages_and_submits_are_not_counted(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.fault("run_sse", "http_429")
    up.send(sid, "make a video")
    sim.set_credits(0)
    up.send(sid, "make a video")  # 2001
    assert up.submit("render_x", sid, {"t": []}).status_code == 400
    assert sim.activity(sid)["messages_sent"] == 0 and sim.activity(sid)["renders_submitted"] == 0
    assert sim.endpoint_count("run_sse") == 2


def test_duplicate_message(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0)
    for text in ("make a video", "add music", "make a video", "make a video"):
        up.message(sid, text)
    assert sim.activity(sid)["duplicate_messages"] == {"make a video": 3}
    summary = sim.summary()
    assert summary["duplicate_messages"] == 2 and summary["sessions_with_duplicates"] == [sid]


def test_duplicate_render_means_an_unchanged_draft_rendered_again(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, render_seconds=1000.0)
    up.message(sid, "make a video")
    draft = _draft(up, sid)
    up.submit("render_1", sid, draft)
    up.submit("render_2", sid, draft)  # nothing changed since render_1: a duplicate
    assert sim.activity(sid)["duplicate_renders"] == [
        {"render_id": "render_2", "duplicate_of": "render_1", "draft_version": 1}
    ]
    up.message(sid, "add music")
    up.submit("render_3", sid, _draft(up, sid))  # a new draft version: not a duplicate
    assert sim.summary()["duplicate_renders"] == 1


def test_rerender_after_failure_or_cancel_is_not_a_duplicate(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, render_seconds=0.0, render_fail_share=1.0)
    up.message(sid, "make a video")
    draft = _draft(up, sid)
    up.submit("render_f", sid, draft)
    wait_until(lambda: sim.render("render_f")["status"] == "failed")
    sim.configure(render_fail_share=0.0, render_seconds=1000.0)
    up.submit("render_c", sid, draft)
    assert up.http.post("/api/render/proxy/lambda/render_c/cancel", headers=up.headers()).status_code == 200
    up.submit("render_ok", sid, draft)
    assert sim.activity(sid)["duplicate_renders"] == [] and sim.activity(sid)["renders_submitted"] == 3

"""The message stream: both encodings, heartbeats, silent runs, the server-side run, credits."""

from __future__ import annotations

import re

import pytest

from tests.sim.upstream import Upstream, events, message_body, texts
from tests.utils.sim_admin import SimAdmin
from tests.utils.waiting import wait_until

GUI_PHRASES = re.compile(r"Export button|导出|Tracks panel|轨道面板|[Pp]review in timeline|drag the clip")
EVENT_KEYS = {"id", "invocationId", "author", "timestamp", "content", "actions", "longRunningToolIds"}
NO_ACTIONS = {"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}}


def test_adk_stream_shape(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=0.0, temporary_issue_share=0.0)
    frames = up.message(sid, "make a city timelapse with lo-fi music")
    evs = events(frames)
    assert evs and all(set(ev) >= EVENT_KEYS for ev in evs)
    assert len({ev["invocationId"] for ev in evs}) == 1 and evs[0]["invocationId"].startswith("e-")
    assert all(ev["author"] == "nemo_agent" and ev["content"]["role"] == "model" for ev in evs)
    assert all(ev["actions"] == NO_ACTIONS for ev in evs)
    assert all(isinstance(ev["timestamp"], float) and ev["partial"] is False for ev in evs)
    parts = [p for ev in evs for p in ev["content"]["parts"]]
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    results = [p["functionResponse"] for p in parts if "functionResponse" in p]
    assert calls and [c["id"] for c in calls] == [r["id"] for r in results]
    assert [ev.get("finishReason") for ev in evs] == [None] * (len(evs) - 1) + ["STOP"]
    assert GUI_PHRASES.search(" ".join(texts(evs)))


def test_camel_case_body_is_accepted(sim: SimAdmin, up: Upstream, sid: str) -> None:
    frames = up.message(sid, "hello", camel=True)
    assert events(frames)
    assert sim.session(sid)["messages"] == ["hello"]


def test_legacy_encoding(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(legacy_events=True, silent_share=0.0, temporary_issue_share=0.0)
    evs = events(up.message(sid, "make something"))
    kinds = [ev["type"] for ev in evs]
    assert set(kinds) == {"text", "tool_call", "tool_result"}
    call = next(ev for ev in evs if ev["type"] == "tool_call")
    result = next(ev for ev in evs if ev["type"] == "tool_result")
    assert set(call) == {"type", "name", "args"} and set(result) == {"type", "name", "result"}
    assert all(isinstance(ev["content"], str) for ev in evs if ev["type"] == "text")


@pytest.mark.parametrize("legacy", [False, True])
def test_all_heartbeat_forms_appear(sim: SimAdmin, up: Upstream, sid: str, legacy: bool) -> None:
    sim.configure(heartbeat_every_s=1.0, legacy_events=legacy)
    frames = up.message(sid, "work for a while")
    assert any(f.kind == "comment" and f.value == "ping" for f in frames)
    assert any(f.kind == "data" and f.value == "" for f in frames)
    assert any(f.kind == "data" and f.value == '{"type":"heartbeat"}' for f in frames)


def test_silent_share_one_sends_no_text_but_edits(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=1.0, message_seconds=5.0)
    for n in (1, 2, 3):
        evs = events(up.message(sid, f"edit number {n}"))
        assert texts(evs) == []
        assert any("functionCall" in p for ev in evs for p in ev["content"]["parts"])
        assert sim.session(sid)["draft_version"] == n


def test_silent_share_zero_always_talks(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=0.0, message_seconds=5.0)
    for n in range(3):
        assert texts(events(up.message(sid, f"edit {n}")))


def test_temporary_issue_noise(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(silent_share=0.0, temporary_issue_share=1.0)
    said = texts(events(up.message(sid, "make it")))
    assert said[-1].startswith("I encountered a temporary issue")


def test_every_message_changes_the_draft(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(message_seconds=5.0)
    assert up.draft(sid) is None
    seen = []
    for prompt in ("a video about mountains", "add music", "change the title to 'Peaks'", "trim", "ok", "ok"):
        up.message(sid, prompt)
        draft = up.draft(sid)
        assert draft not in seen
        seen.append(draft)
    first = seen[0]
    assert [t["tt"] for t in first["t"]] == [0, 1, 7]
    assert first["m"] == {"title": "Mountains", "width": 1080, "height": 1920}
    assert first["d"] == max(s["s"] + s["d"] for t in first["t"] for s in t["sg"])
    assert up.state(sid).json()["data"]["state"]["generated_media"]  # no uploads: the agent made media
    assert sim.session(sid)["draft_version"] == 6


def test_edit_lands_when_client_disconnects(sim: SimAdmin, up: Upstream, sid: str) -> None:
    # a 1 s run (100 upstream s at 0.01): the edit lands at ~0.1 s, the run ends at ~1 s
    sim.configure(message_seconds=100.0, heartbeat_every_s=1.0, silent_share=1.0)
    body = message_body(sid, "add a title")
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=body) as resp:
        first = next(resp.iter_lines())
        assert first == ": ping"  # the first heartbeat comes before the first tool call
    assert sim.session(sid)["draft_version"] == 0
    # the response is gone, the run is not: credits frozen, no stream in flight, then the edit lands
    wait_until(lambda: sim.counters()["in_flight_streams"] == 0)
    assert sim.session(sid)["runs_in_progress"] == 1
    assert up.credits() == {"available": 90, "frozen": 10, "total": 100}
    wait_until(lambda: sim.session(sid)["draft_version"] == 1)
    wait_until(lambda: sim.session(sid)["runs_in_progress"] == 0)
    assert up.credits() == {"available": 90, "frozen": 0, "total": 90}


def test_credits_frozen_then_spent_then_2001(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(message_seconds=30.0, credits_per_message=30)
    body = message_body(sid, "go")
    with up.http.stream("POST", "/run_sse", headers=up.headers(), json=body) as resp:
        assert resp.status_code == 200
        assert up.credits() == {"available": 70, "frozen": 30, "total": 100}
        assert sim.counters()["in_flight_streams"] == 1
        resp.read()
    wait_until(lambda: up.credits()["frozen"] == 0)
    assert up.credits() == {"available": 70, "frozen": 0, "total": 70}
    sim.set_credits(29)
    refused = up.send(sid, "again")
    assert refused.status_code == 200 and refused.headers["content-type"].startswith("application/json")
    assert refused.json() == {"code": 2001, "message": "insufficient credits"}
    assert sim.session(sid)["messages"] == ["go"]


def test_unknown_session_is_adk_404(sim: SimAdmin, up: Upstream) -> None:
    resp = up.send("9999999999999999999", "hi")
    assert resp.status_code == 404 and resp.json() == {"detail": "Session not found"}


def test_stream_time_follows_the_scale(sim: SimAdmin, up: Upstream, sid: str) -> None:
    sim.configure(message_seconds=30.0, heartbeat_every_s=10.0, silent_share=1.0)
    frames = up.message(sid, "x")  # 0.3 s at 0.01: heartbeats at 0.1 and 0.2 only
    assert len([f for f in frames if f.kind == "comment" or f.value in ("", '{"type":"heartbeat"}')]) == 2

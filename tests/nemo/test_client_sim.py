"""NemoClient against the simulator over real HTTP: every endpoint's happy path."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.nemo import errors as e
from shared.nemo.client import NemoClient
from shared.nemo.draft import draft_fingerprint, is_export_ready, timeline_summary
from shared.nemo.profiles import KLING


def poll_render(client: NemoClient, render_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = client.get_render(render_id)
        seen.append(status)
        if status.done:
            return status, seen
        time.sleep(0.05)
    raise AssertionError(f"render {render_id} not done: {seen[-1]}")


def fast_agent(sim, **extra):
    sim.configure(message_seconds=20, heartbeat_every_s=2, render_seconds=60, **extra)  # x0.01 time scale


def test_mint_anonymous_token(sim, anon_client):
    tok = anon_client.mint_anonymous_token("client-abc")
    assert tok.token.startswith("nmv_usr_") and tok.user_id.startswith("anon_") and tok.credits == 100
    assert timedelta(days=6) < tok.expires_at - datetime.now(UTC) <= timedelta(days=7, minutes=1)
    assert tok.token not in repr(tok)
    assert sim.endpoint_count("anonymous_token") == 1


def test_session_upload_message_state_credits(sim, client, tmp_path):
    fast_agent(sim, silent_share=0.0)
    session = client.create_session(language="en")
    assert re.fullmatch(r"\d{19}", session.session_id) and session.task_id and session.user_id == "usr_test"

    clip = tmp_path / "city_timelapse.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 5000)
    image = tmp_path / "poster.jpeg"
    image.write_bytes(b"\xff\xd8\xff" + b"y" * 300)
    files = client.upload_files(session.session_id, [clip, image])
    assert [(f.filename, f.file_type) for f in files] == [("city_timelapse.mp4", "video"), ("poster.jpeg", "image")]
    assert files[0].hash == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert files[0].cdn_url and files[0].duration and files[0].width
    urls = client.upload_urls(session.session_id, ["https://cdn.example.com/media/song.mp3"])
    assert urls[0].file_type == "audio" and urls[0].filename == "song.mp3"

    before = client.get_credits()
    events = []
    result = client.send_message(
        session.session_id, "turn this into a short video with captions", on_event=events.append
    )
    assert result.ended == "closed" and result.error is None and not result.silent
    assert result.texts and result.tool_calls and result.heartbeats >= 1
    assert len(events) == result.events and sum(ev.kind == "heartbeat" for ev in events) == result.heartbeats
    assert sim.session(session.session_id)["messages"] == ["turn this into a short video with captions"]

    state = client.get_state(session.session_id)
    assert state.session_id == session.session_id and state.task_id == session.task_id
    assert is_export_ready(state.draft) and len(state.video_infos) == 3
    assert state.canvas_config == {"width": 1080, "height": 1920}
    summary = timeline_summary(state.draft)
    assert summary.startswith("Timeline (") and "city timelapse" in summary
    after = client.get_credits()
    assert after.available == before.available - 10 and after.total == after.available + after.frozen


@pytest.mark.parametrize("legacy", [False, True])
def test_both_event_forms_fold_the_same(sim, client, legacy):
    fast_agent(sim, silent_share=0.0, legacy_events=legacy)
    sid = client.create_session().session_id
    result = client.send_message(sid, "make a video about a fox in the snow")
    assert result.texts and result.tool_calls and result.tool_results and result.heartbeats >= 1
    assert all(isinstance(t, str) and t for t in result.texts)
    assert all(call.name for call in result.tool_calls)
    if not legacy:
        assert all(call.id for call in result.tool_calls)


def test_all_heartbeat_forms_are_counted(sim, client):
    sim.configure(message_seconds=30, heartbeat_every_s=1, silent_share=1.0)
    sid = client.create_session().session_id
    raw_forms = set()

    def note(ev):
        if ev.kind == "heartbeat":
            raw_forms.add(ev.raw if isinstance(ev.raw, str) else "json")

    result = client.send_message(sid, "make a video", on_event=note)
    assert result.heartbeats >= 9
    assert raw_forms == {": ping", "", "json"}


def test_silent_stream_still_edits_the_draft(sim, client):
    fast_agent(sim, silent_share=0.0)
    sid = client.create_session().session_id
    client.send_message(sid, "make a video about the sea")
    first = client.get_state(sid).draft
    sim.configure(silent_share=1.0)
    result = client.send_message(sid, "add some lo-fi music")
    assert result.silent and result.texts == [] and result.ended == "closed" and result.tool_calls
    assert draft_fingerprint(client.get_state(sid).draft) != draft_fingerprint(first)


@pytest.mark.parametrize("shape", ["A", "B"])
def test_render_lifecycle_and_download(sim, client, tmp_path, shape):
    fast_agent(sim, silent_share=0.0, render_shape=shape)
    sid = client.create_session().session_id
    client.send_message(sid, "make a video about a city at night")
    draft = client.get_state(sid).draft
    rid = f"render_{time.time_ns()}"
    submitted = client.submit_render(rid, sid, draft)
    assert (submitted.id, submitted.status, submitted.progress) == (rid, "pending", 5)
    done, seen = poll_render(client, rid)
    assert done.status == "completed" and done.progress == 100 and done.output_url
    assert all(s.status in ("pending", "processing", "completed") for s in seen)
    assert [s.progress for s in seen] == sorted(s.progress for s in seen)
    if shape == "A":
        assert done.created_at and done.completed_at and done.completed_at >= done.created_at
        assert "data" in done.raw
    else:
        assert done.size and "taskId" in done.raw
    path = client.download_render(rid, tmp_path / "out" / "video.mp4")
    body = path.read_bytes()
    assert rid.encode() in body and body[4:8] == b"ftyp"
    assert not (tmp_path / "out" / "video.mp4.part").exists()
    again = client.download_url(done.output_url, tmp_path / "again.mp4")
    assert again.read_bytes() == body


def test_both_shapes_alternate(sim, client):
    fast_agent(sim, silent_share=0.0, render_shape="both")
    sid = client.create_session().session_id
    client.send_message(sid, "make a video")
    rid = f"render_{time.time_ns()}"
    client.submit_render(rid, sid, client.get_state(sid).draft)
    shapes = {"data" in client.get_render(rid).raw for _ in range(4)}
    assert shapes == {True, False}


def test_render_failure_cancel_duplicate_and_unknown(sim, client, tmp_path):
    fast_agent(sim, silent_share=0.0, render_fail_share=1.0)
    sid = client.create_session().session_id
    client.send_message(sid, "make a video")
    draft = client.get_state(sid).draft
    failed_id = f"render_{time.time_ns()}"
    client.submit_render(failed_id, sid, draft)
    failed, _ = poll_render(client, failed_id)
    assert failed.status == "failed" and failed.error

    with pytest.raises(e.DuplicateRenderId):
        client.submit_render(failed_id, sid, draft)

    sim.configure(render_fail_share=0.0, render_seconds=6000)
    slow_id = f"render_{time.time_ns()}"
    client.submit_render(slow_id, sid, draft)
    with pytest.raises(e.RenderNotReady):
        client.download_render(slow_id, tmp_path / "early.mp4")
    assert list(tmp_path.iterdir()) == []
    canceled = client.cancel_render(slow_id)
    assert canceled is not None and canceled.status == "canceled" and canceled.done
    assert client.get_render(slow_id).status == "canceled"

    with pytest.raises(e.RenderNotFound):
        client.get_render("render_does_not_exist")
    with pytest.raises(e.RenderNotFound):
        client.cancel_render("render_does_not_exist")


def test_empty_draft_is_refused_before_sending(sim, client):
    sid = client.create_session().session_id
    for draft in ({}, {"t": [{"tt": 0, "sg": []}]}):
        with pytest.raises(e.EmptyDraft):
            client.submit_render(f"render_{time.time_ns()}", sid, draft)
    assert sim.endpoint_count("render_submit") == 0


def test_sim_refuses_an_empty_draft_as_empty_draft():
    err = e.error_from_reply(400, {"success": False, "message": "draft is empty"})
    assert isinstance(err, e.EmptyDraft)


def test_profile_per_call_changes_headers_and_limits(sim, client, tmp_path):
    sid = client.create_session(profile=KLING).session_id
    small = tmp_path / "a.png"
    small.write_bytes(b"\x89PNG" + b"0" * 100)
    client.upload_files(sid, [small], profile=KLING.source)
    sources = [
        r["headers"].get("x-skill-source") or r["headers"].get("X-Skill-Source")
        for r in sim.requests(5)
        if r["endpoint"] in ("session", "upload")
    ]
    assert sources == [KLING.source, KLING.source]

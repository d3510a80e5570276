"""NemoClient against the simulator's injected faults: every error code maps to its class."""

from __future__ import annotations

import time

import httpx
import pytest

from shared.nemo import errors as e
from shared.nemo.profiles import KAPWING, KLING

SIMPLE_CALLS = {
    "session": lambda c, sid, tmp: c.create_session(),
    "upload": lambda c, sid, tmp: c.upload_files(sid, [tmp]),
    "state": lambda c, sid, tmp: c.get_state(sid),
    "credits": lambda c, sid, tmp: c.get_credits(),
    "run_sse": lambda c, sid, tmp: c.send_message(sid, "hello"),
}
KIND_TO_CLASS = {
    "http_429": e.RateLimited,
    "http_500": e.UpstreamUnavailable,
    "http_502": e.UpstreamUnavailable,
    "http_503": e.UpstreamUnavailable,
    "code_1002": e.SessionNotFound,
    "code_4001": e.UnsupportedFileType,
    "code_4002": e.FileTooLarge,
    "http_402": e.ExportBlocked,
}


@pytest.fixture()
def media(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"0" * 2048)
    return path


@pytest.mark.parametrize("endpoint", sorted(SIMPLE_CALLS))
@pytest.mark.parametrize("kind", sorted(KIND_TO_CLASS))
def test_fault_maps_to_class(sim, client, media, endpoint, kind):
    sim.configure(message_seconds=2)
    sid = client.create_session().session_id
    sim.fault(endpoint, kind, retry_after=7 if kind == "http_429" else None)
    with pytest.raises(KIND_TO_CLASS[kind]) as info:
        SIMPLE_CALLS[endpoint](client, sid, media)
    err = info.value
    assert err.retryable is KIND_TO_CLASS[kind].retryable and err.user_message
    if kind == "http_429":
        assert err.retry_after == 7
    if kind == "http_502":
        assert err.http_status == 502
    SIMPLE_CALLS[endpoint](client, sid, media)  # the fault fired once; the next call succeeds


@pytest.mark.parametrize(
    ("endpoint", "kind", "cls"),
    [
        ("render_submit", "http_402", e.ExportBlocked),
        ("render_submit", "http_503", e.UpstreamUnavailable),
        ("render_status", "http_429", e.RateLimited),
        ("render_status", "http_500", e.UpstreamUnavailable),
        ("render_cancel", "http_502", e.UpstreamUnavailable),
        ("render_download", "http_503", e.UpstreamUnavailable),
        ("render_submit", "code_1002", e.SessionNotFound),
    ],
)
def test_render_faults(sim, client, tmp_path, endpoint, kind, cls):
    sim.configure(message_seconds=5, silent_share=0.0, render_seconds=10)
    sid = client.create_session().session_id
    client.send_message(sid, "make a video")
    draft = client.get_state(sid).draft
    rid = f"render_{time.time_ns()}"
    if endpoint != "render_submit":
        client.submit_render(rid, sid, draft)
    sim.fault(endpoint, kind)
    calls = {
        "render_submit": lambda: client.submit_render(rid, sid, draft),
        "render_status": lambda: client.get_render(rid),
        "render_cancel": lambda: client.cancel_render(rid),
        "render_download": lambda: client.download_render(rid, tmp_path / "v.mp4"),
    }
    with pytest.raises(cls):
        calls[endpoint]()


def test_drop_mid_stream_gives_partial_and_the_edit_still_lands(sim, client):
    sim.configure(message_seconds=20, heartbeat_every_s=1, silent_share=0.0)
    sid = client.create_session().session_id
    sim.fault("run_sse", "drop", after_events=3)
    with pytest.raises(e.UpstreamConnectionError) as info:
        client.send_message(sid, "make a video about trains")
    partial = info.value.partial
    assert partial is not None and partial.ended == "dropped" and partial.events >= 3
    deadline = time.monotonic() + 5
    while sim.session(sid)["runs_in_progress"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.session(sid)["draft_version"] == 1  # the server-side run finished anyway
    assert client.get_state(sid).draft


def test_drop_on_a_plain_call_is_a_connection_error(sim, client):
    sim.fault("credits", "drop")
    with pytest.raises(e.UpstreamConnectionError):
        client.get_credits()
    assert client.get_credits().total >= 0


def test_stream_error_forms(sim, client):
    sim.configure(message_seconds=5, silent_share=0.0)
    sid = client.create_session().session_id
    sim.fault("run_sse", "stream_error", times=3)
    forms = set()

    def note(ev):
        if ev.kind == "error":
            raw = ev.raw
            forms.add("system" if raw.get("author") == "system" else "errorCode" if "errorCode" in raw else "bare")

    for _ in range(3):
        result = client.send_message(sid, "make a video", on_event=note)
        assert isinstance(result.error, e.StreamFailed) and result.error.retryable and result.error.message
        assert not any(t.lower().startswith("error") for t in result.texts)
    assert forms == {"system", "errorCode", "bare"}


def test_unknown_session_on_run_sse(sim, client):
    with pytest.raises(e.SessionNotFound):
        client.send_message("1234567890123456789", "hello")
    with pytest.raises(e.SessionNotFound):
        client.get_state("1234567890123456789")


def test_out_of_credits_mid_job_blocks_the_token(sim, anon_client):
    sid = anon_client.create_session().session_id
    user_id = anon_client.tokens.current.user_id
    sim.set_credits(0)
    with pytest.raises(e.OutOfCredits) as info:
        anon_client.send_message(sid, "make a video")
    assert info.value.register_url == f"https://nemovideo.com/register?bind={user_id}"
    assert user_id in info.value.user_message
    before = sim.endpoint_count("credits")
    with pytest.raises(e.OutOfCredits):
        anon_client.get_credits()  # the provider stops spending this credential: no request goes out
    assert sim.endpoint_count("credits") == before
    assert sim.endpoint_count("anonymous_token") == 1


def test_code_2001_for_a_registered_user_has_no_register_link(sim, client):
    sim.fault("run_sse", "code_2001")
    sid = client.create_session().session_id
    with pytest.raises(e.OutOfCredits) as info:
        client.send_message(sid, "make a video")
    assert info.value.register_url is None and "top up" in info.value.user_message


def test_upload_validated_before_sending(sim, client, tmp_path):
    sid = client.create_session().session_id
    odd = tmp_path / "notes.xyz"
    odd.write_bytes(b"hello")
    with pytest.raises(e.UnsupportedFileType) as info:
        client.upload_files(sid, [odd])
    assert "mp4" in info.value.user_message and ".xyz" in info.value.user_message
    big = tmp_path / "big.mp4"
    with big.open("wb") as f:
        f.truncate(21 * 1024 * 1024)
    with pytest.raises(e.FileTooLarge) as info:
        client.upload_files(sid, [big], profile="free-kling-ai-video-generation")
    assert "20 MB" in info.value.user_message
    with pytest.raises(e.UnsupportedFileType):
        client.upload_urls(sid, ["https://example.com/a/doc.pdf"])
    assert sim.endpoint_count("upload") == 0
    assert client.upload_files(sid, []) == []


def test_replies_our_client_prevents_still_map(sim_url, sim, tmp_path):
    """Errors NemoClient avoids by checking first, read from the simulator's real replies (raw httpx)."""
    sim.add_token("tok-raw", credits=100)
    auth = {"Authorization": "Bearer tok-raw", **KLING.attribution_headers()}
    with httpx.Client(base_url=sim_url, timeout=30) as raw:
        resp = raw.post("/api/auth/anonymous-token", headers=KAPWING.attribution_headers())
        assert isinstance(e.error_from_reply(resp.status_code, resp.json()), e.MissingClientId)
        sid = raw.post("/api/tasks/me/with-session/nemo_agent", json={"task_name": "p"}, headers=auth).json()["data"][
            "session_id"
        ]
        body = {
            "id": "render_raw",
            "sessionId": sid,
            "draft": {"t": [{"tt": 0, "sg": [{"s": 0, "d": 1}]}]},
            "output": {"format": "mp4", "quality": "high"},
        }
        resp = raw.post("/api/render/proxy/lambda", json=body, headers={"Authorization": "Bearer tok-raw"})
        assert isinstance(e.error_from_reply(resp.status_code, resp.json()), e.ExportBlocked)
        resp = raw.post("/api/render/proxy/lambda", json={**body, "draft": {"t": []}}, headers=auth)
        assert isinstance(e.error_from_reply(resp.status_code, resp.json()), e.EmptyDraft)
        path = f"/api/upload-video/nemo_agent/me/{sid}"
        resp = raw.post(path, headers=auth, files={"files": ("a.xyz", b"data")})
        err = e.error_from_reply(resp.status_code, resp.json(), profile=KLING)
        assert isinstance(err, e.UnsupportedFileType) and ".xyz" in err.user_message
        big = tmp_path / "big.mp4"
        with big.open("wb") as f:
            f.truncate(21 * 1024 * 1024)
        with big.open("rb") as f:
            resp = raw.post(path, headers=auth, files={"files": ("big.mp4", f)})
        err = e.error_from_reply(resp.status_code, resp.json(), profile=KLING)
        assert isinstance(err, e.FileTooLarge) and "20 MB" in err.user_message


def test_mint_rejects_bad_client_ids_locally(sim, anon_client):
    for bad in ("", "x" * 65):
        with pytest.raises(e.MissingClientId):
            anon_client.mint_anonymous_token(bad)
    assert sim.endpoint_count("anonymous_token") == 0


def test_mint_rate_limit(sim, anon_client):
    sim.configure(anon_per_client_limit=2)
    anon_client.mint_anonymous_token("same-client")
    anon_client.mint_anonymous_token("same-client")
    with pytest.raises(e.RateLimited) as info:
        anon_client.mint_anonymous_token("same-client")
    assert info.value.retry_after is None or info.value.retry_after > 0


def test_msg_field_replies(sim, client):
    sim.configure(msg_field=True)
    sim.fault("credits", "code_1002")
    with pytest.raises(e.SessionNotFound) as info:
        client.get_credits()
    assert info.value.message == "session not found"

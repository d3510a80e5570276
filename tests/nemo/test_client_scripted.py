"""The client against a scripted loopback server: idle, cap, drops and odd replies the simulator does not make."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from shared.nemo import errors as e
from shared.nemo.client import NemoClient
from shared.nemo.tokens import StaticTokenProvider
from tests.nemo.scripted_server import Reply, ScriptedServer, sse_reply

TOKEN = "nmv_usr_scripted_secret"


def text_event(text: str) -> str:
    event = {"author": "nemo_agent", "content": {"role": "model", "parts": [{"text": text}]}}
    return f"data: {json.dumps(event)}\n\n"


@pytest.fixture()
def nemo(scripted: ScriptedServer):
    with NemoClient(scripted.url, StaticTokenProvider(TOKEN), timeout_s=5.0) as client:
        yield client


def test_idle_stream_ends_idle(scripted, nemo):
    scripted.route("POST", "/run_sse", sse_reply((0, text_event("started")), (0, ": ping\n\n"), (30, "late")))
    seen = []
    result = nemo.send_message("1", "hi", idle_s=0.3, on_event=seen.append)
    assert result.ended == "idle"
    assert result.texts == ["started"] and result.heartbeats == 1
    assert [ev.kind for ev in seen] == ["text", "heartbeat"]
    assert 0.3 <= result.duration_s < 10


def test_busy_stream_is_capped(scripted, nemo):
    beats = [(0.02, ": ping\n\n")] * 500
    scripted.route("POST", "/run_sse", sse_reply((0, text_event("working")), *beats))
    result = nemo.send_message("1", "hi", max_s=0.3, idle_s=5)
    assert result.ended == "cap"
    assert result.texts == ["working"] and 1 <= result.heartbeats < 500


def test_silent_stream_near_the_cap_ends_as_cap(scripted, nemo):
    scripted.route("POST", "/run_sse", sse_reply((0, ": ping\n\n"), (30, "late")))
    result = nemo.send_message("1", "hi", max_s=0.2, idle_s=60)
    assert result.ended == "cap"


def test_dropped_stream_raises_with_partial(scripted, nemo):
    scripted.route("POST", "/run_sse", sse_reply((0, text_event("half")), (0, "data:\n\n"), complete=False))
    with pytest.raises(e.UpstreamConnectionError) as info:
        nemo.send_message("1", "hi")
    partial = info.value.partial
    assert partial is not None and partial.ended == "dropped"
    assert partial.texts == ["half"] and partial.heartbeats == 1 and partial.events == 2
    assert info.value.retryable


def test_clean_end_with_unterminated_event(scripted, nemo):
    scripted.route("POST", "/run_sse", sse_reply((0, ': ping\r\n\r\ndata: {"type":"text","content":"tail"}')))
    result = nemo.send_message("1", "hi")
    assert (result.ended, result.texts, result.heartbeats) == ("closed", ["tail"], 1)


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (Reply(200, chunks=[(0, b'{"code":2001,"message":"insufficient credits"}')]), e.OutOfCredits),
        (Reply(404, chunks=[(0, b'{"detail":"Session not found"}')]), e.SessionNotFound),
        (Reply(200, chunks=[(0, b'{"code":0,"data":{}}')]), e.ProtocolError),
        (Reply(502, {"Content-Type": "text/html"}, [(0, b"<html>bad gateway</html>")]), e.UpstreamUnavailable),
        (Reply(200, {"Content-Type": "text/html"}, [(0, b"<html>hello</html>")]), e.ProtocolError),
    ],
)
def test_non_stream_replies_to_run_sse(scripted, nemo, reply, cls):
    scripted.route("POST", "/run_sse", reply)
    with pytest.raises(cls):
        nemo.send_message("1", "hi")


def test_token_refused_twice_raises_after_one_refresh(scripted):
    scripted.route("GET", "/api/credits/balance/simple", Reply(401, chunks=[(0, b'{"code":1011,"message":"bad"}')]))
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    provider = StaticTokenProvider(source=lambda: next(tokens))
    with NemoClient(scripted.url, provider) as nemo, pytest.raises(e.TokenInvalid):
        nemo.get_credits()
    auths = [s.headers.get("Authorization") for s in scripted.seen]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


def test_rejected_static_token_is_reloaded_and_the_call_retried_once(scripted, nemo):
    scripted.route("GET", "/api/credits/balance/simple", Reply(401, chunks=[(0, b'{"code":1011,"message":"bad"}')]))
    with pytest.raises(e.TokenInvalid) as info:
        nemo.get_credits()
    assert [s.headers.get("Authorization") for s in scripted.seen] == [f"Bearer {TOKEN}"] * 2
    assert info.value.retryable is True  # rejected again: the worker's retry policy decides


def test_retry_after_http_date(scripted, nemo):
    scripted.route(
        "GET",
        "/api/credits/balance/simple",
        Reply(
            429,
            {"Content-Type": "application/json", "Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"},
            [(0, b'{"message":"slow down"}')],
        ),
    )
    with pytest.raises(e.RateLimited) as info:
        nemo.get_credits()
    assert info.value.retry_after > 1e8


def test_upstream_echoing_the_token_is_redacted(scripted, caplog):
    scripted.route(
        "GET",
        "/api/credits/balance/simple",
        Reply(400, chunks=[(0, b'{"code":4000,"message":"bad token plain-secret-9 here"}')]),
    )
    caplog.set_level(logging.DEBUG, logger="shared.nemo")
    with NemoClient(scripted.url, StaticTokenProvider("plain-secret-9")) as nemo, pytest.raises(e.NemoError) as info:
        nemo.get_credits()
    assert "plain-secret-9" not in str(info.value) and "plain-secret-9" not in info.value.user_message
    assert "plain-secret-9" not in caplog.text
    assert "GET /api/credits/balance/simple -> 400" in caplog.text


def test_non_json_success_is_a_protocol_error(scripted, nemo):
    scripted.route("GET", "/api/credits/balance/simple", Reply(200, {"Content-Type": "text/plain"}, [(0, b"ok")]))
    with pytest.raises(e.ProtocolError):
        nemo.get_credits()


def test_redirect_is_not_followed_for_api_calls(scripted, nemo):
    scripted.route("GET", "/api/credits/balance/simple", Reply(302, {"Location": "http://127.0.0.1:9/x"}))
    with pytest.raises(e.ProtocolError):
        nemo.get_credits()


def test_cancel_reply_without_status_is_none(scripted, nemo):
    scripted.route("POST", "/api/render/proxy/lambda/r1/cancel", Reply(200, chunks=[(0, b'{"success":true}')]))
    assert nemo.cancel_render("r1") is None


def test_connection_refused_is_a_connection_error():
    with NemoClient("http://127.0.0.1:9", StaticTokenProvider(TOKEN), timeout_s=2) as nemo:
        with pytest.raises(e.UpstreamConnectionError) as info:
            nemo.get_credits()
        with pytest.raises(e.UpstreamConnectionError):
            nemo.send_message("1", "hi")
        with pytest.raises(e.UpstreamConnectionError):
            nemo.download_url("http://127.0.0.1:9/x.mp4", Path("/tmp/never.mp4"))
    assert info.value.retryable and TOKEN not in str(info.value)


def test_bad_scheme_is_a_protocol_error():
    with NemoClient("ftp://127.0.0.1:9", StaticTokenProvider(TOKEN)) as nemo, pytest.raises(e.ProtocolError):
        nemo.get_credits()


def test_cdn_download_gets_no_token(scripted, nemo, tmp_path):
    other = ScriptedServer()
    with other:
        other.route("GET", "/cdn/out.mp4", Reply(200, {"Content-Type": "video/mp4"}, [(0, b"MP4DATA")]))
        path = nemo.download_url(f"{other.url}/cdn/out.mp4?sig=abc", tmp_path / "o.mp4")
        assert path.read_bytes() == b"MP4DATA"
        assert "Authorization" not in other.seen[0].headers
        assert "X-Skill-Source" not in other.seen[0].headers


def test_mint_http_400_is_missing_client_id(scripted, nemo):
    scripted.route(
        "POST",
        "/api/auth/anonymous-token",
        Reply(400, chunks=[(0, b'{"code":400,"message":"X-Client-Id header is required"}')]),
    )
    with pytest.raises(e.MissingClientId) as info:
        nemo.mint_anonymous_token("abc")
    assert "X-Client-Id" in info.value.message and not info.value.retryable
    assert scripted.seen[0].headers["X-Client-Id"] == "abc" and "Authorization" not in scripted.seen[0].headers


def test_in_stream_out_of_credits_blocks_the_token(scripted):
    error = 'data: {"error":{"code":2001,"message":"insufficient credits"}}\n\n'
    stream = sse_reply((0, text_event("starting")), (0, error))
    scripted.route("POST", "/run_sse", stream)
    provider = StaticTokenProvider(TOKEN, user_id="anon_9")
    with NemoClient(scripted.url, provider) as nemo:
        result = nemo.send_message("1", "hi")
        assert isinstance(result.error, e.OutOfCredits) and result.texts == ["starting"]
        assert result.error.register_url == "https://nemovideo.com/register?bind=anon_9"
        with pytest.raises(e.OutOfCredits):
            nemo.get_credits()
    assert len(scripted.seen) == 1


def test_unexpected_success_status_with_json(scripted, nemo, tmp_path):
    scripted.route(
        "GET",
        "/api/credits/balance/simple",
        Reply(302, {"Content-Type": "application/json", "Location": "/x"}, [(0, b'{"code":0}')]),
    )
    with pytest.raises(e.ProtocolError) as info:
        nemo.get_credits()
    assert "unexpected HTTP 302" in info.value.message
    scripted.route("GET", "/api/render/proxy/r1/download", Reply(204, chunks=[(0, b'{"success":true}')]))
    with pytest.raises(e.ProtocolError):
        nemo.download_render("r1", tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_unknown_profile_is_refused(nemo):
    from shared.nemo.profiles import UnknownProfileError

    with pytest.raises(UnknownProfileError) as info:
        nemo.get_credits(profile="no-such-skill")
    assert "ai-video-generator-free-kapwing" in str(info.value)

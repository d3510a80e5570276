"""Tokens over real HTTP: one mint for many threads, one refresh after expiry, headers on every request."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.nemo import errors as e
from shared.nemo.client import NemoClient
from shared.nemo.profiles import KAPWING, KLING
from shared.nemo.tokens import AnonymousTokenProvider, StaticTokenProvider
from shared.settings import Settings


def run_together(n: int, fn):
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_hundred_threads_one_mint(sim, anon_client):
    results = run_together(100, anon_client.get_credits)
    granted = sim.config()["anonymous_credits"]
    assert len(results) == 100 and all(r.available == granted for r in results)
    assert sim.endpoint_count("anonymous_token") == 1
    assert sim.endpoint_count("credits") == 100
    assert anon_client.tokens.mints == 1


def test_expired_tokens_one_refresh_and_the_calls_succeed(sim, anon_client):
    anon_client.get_credits()
    stale = anon_client.tokens.current.token
    sim.expire_tokens()
    results = run_together(50, anon_client.get_credits)
    assert len(results) == 50
    assert sim.endpoint_count("anonymous_token") == 2  # the first mint and exactly one refresh
    assert anon_client.tokens.current.token != stale


@pytest.mark.parametrize("kind", ["http_401", "code_1001"])
def test_token_fault_refreshes_once(sim, anon_client, kind):
    first = anon_client.get_credits()
    sim.fault("credits", kind)
    assert anon_client.get_credits() == first  # a fresh anonymous user starts with the same 100 credits
    assert sim.endpoint_count("anonymous_token") == 2 and sim.endpoint_count("credits") == 3


@pytest.fixture()
def rotating(sim):
    """A registered user with two tokens; the provider's source hands out the second after the first fails."""
    sim.add_token("tok-one", credits=100, user_id="usr_rot")
    sim.add_token("tok-two", credits=100, user_id="usr_rot")
    tokens = iter(["tok-one", "tok-two"])
    with NemoClient(sim.base_url, StaticTokenProvider(source=lambda: next(tokens))) as nemo:
        yield nemo


@pytest.mark.parametrize("kind", ["http_401", "code_1001"])
def test_refresh_keeps_the_session_of_the_same_user(sim, rotating, kind):
    sid = rotating.create_session().session_id
    sim.fault("state", kind)
    assert rotating.get_state(sid).session_id == sid
    assert sim.session_count(sid, "state") == 2


def test_refresh_before_a_stream(sim, rotating):
    sim.configure(message_seconds=2, silent_share=0.0)
    sid = rotating.create_session().session_id
    sim.fault("run_sse", "code_1001")
    result = rotating.send_message(sid, "make a video")
    assert result.ended == "closed" and result.texts
    assert sim.endpoint_count("run_sse") == 2


def test_registered_token_is_reloaded_once_then_left_to_the_retry_policy(sim, client):
    sim.expire_tokens()
    with pytest.raises(e.TokenInvalid) as info:
        client.get_credits()
    assert info.value.retryable is True  # the worker retries with backoff, then fails the job
    assert sim.endpoint_count("credits") == 2 and sim.endpoint_count("anonymous_token") == 0


def test_no_provider(sim):
    with NemoClient(sim.base_url) as bare, pytest.raises(e.TokenInvalid):
        bare.get_credits()


def test_from_settings_mints_with_the_configured_client_id(sim, tmp_path):
    settings = Settings(
        nemo_base_url=sim.base_url,
        nemo_token=None,
        nemo_client_id="settings-client",
        skill_platform="cursor",
        data_dir=tmp_path,
    )
    with NemoClient.from_settings(settings) as nemo:
        assert isinstance(nemo.tokens, AnonymousTokenProvider) and nemo.tokens.client_id == "settings-client"
        nemo.get_credits()
    platforms = {r["headers"].get("x-skill-platform") for r in sim.requests(10)}
    assert platforms == {"cursor"}
    sim.add_token("tok-settings", credits=5)
    settings = Settings(nemo_base_url=sim.base_url, nemo_token="tok-settings", data_dir=tmp_path)
    with NemoClient.from_settings(settings) as nemo:
        assert isinstance(nemo.tokens, StaticTokenProvider) and nemo.get_credits().available == 5
    with NemoClient.from_settings(settings, tokens=StaticTokenProvider("tok-settings")) as nemo:
        assert nemo.get_credits().available == 5


def test_attribution_headers_on_every_request(sim, anon_client, tmp_path):
    sim.configure(message_seconds=2, silent_share=0.0, render_seconds=5)
    sid = anon_client.create_session().session_id
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"0" * 100)
    anon_client.upload_files(sid, [clip])
    anon_client.upload_urls(sid, ["https://example.com/x.png"], profile=KLING)
    anon_client.send_message(sid, "make a video")
    anon_client.get_credits()
    state = anon_client.get_state(sid)
    anon_client.submit_render("render_hdr", sid, state.draft)
    anon_client.get_render("render_hdr")
    anon_client.cancel_render("render_hdr")
    log = sim.requests(100)
    assert {r["endpoint"] for r in log} >= {
        "anonymous_token",
        "session",
        "upload",
        "run_sse",
        "state",
        "credits",
        "render_submit",
        "render_status",
        "render_cancel",
    }
    for r in log:
        headers = {k.lower(): v for k, v in r["headers"].items()}
        assert headers["x-skill-source"] in (KAPWING.source, KLING.source), r
        assert headers["x-skill-version"] == KAPWING.version and headers["x-skill-platform"] == "unknown"
        assert ("authorization" in headers) is (r["endpoint"] != "anonymous_token"), r
        if r["endpoint"] == "anonymous_token":
            assert headers["x-client-id"] == "test-client-1"

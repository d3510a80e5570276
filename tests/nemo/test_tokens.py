"""Token providers: reuse, expiry margin, refresh, exhaustion, failure pause (pure; the HTTP ones are in
test_client_auth.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.nemo.errors import OutOfCredits, RateLimited, TokenInvalid
from shared.nemo.tokens import AnonymousTokenProvider, StaticTokenProvider, derived_client_id, provider_from_settings
from shared.nemo.wire import AnonymousToken
from shared.settings import Settings


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Minter:
    """Mints numbered tokens with a given lifetime, the way the upstream does (a real function, no mock)."""

    def __init__(self, clock: Clock, ttl_s: float = 7 * 86400, fail: Exception | None = None) -> None:
        self.clock, self.ttl_s, self.fail, self.calls = clock, ttl_s, fail, []

    def __call__(self, client_id: str) -> AnonymousToken:
        self.calls.append(client_id)
        if self.fail:
            raise self.fail
        n = len(self.calls)
        expires = datetime.fromtimestamp(self.clock.now + self.ttl_s, tz=UTC)
        return AnonymousToken(f"nmv_usr_{n}", f"anon_{n}", expires, 100)


def test_anonymous_mints_once_and_reuses_until_margin():
    clock = Clock()
    minter = Minter(clock)
    provider = AnonymousTokenProvider(minter, "cid", margin_s=3600, clock=clock)
    assert provider.token() == "nmv_usr_1" == provider.token()
    clock.now += 7 * 86400 - 3601
    assert provider.token() == "nmv_usr_1"
    clock.now += 2
    assert provider.token() == "nmv_usr_2"
    assert minter.calls == ["cid", "cid"] and provider.mints == 2


def test_short_lived_tokens_are_still_reused():
    clock = Clock()
    minter = Minter(clock, ttl_s=60)
    provider = AnonymousTokenProvider(minter, "cid", margin_s=3600, clock=clock)
    provider.token()
    clock.now += 29
    provider.token()
    assert provider.mints == 1


def test_refresh_replaces_only_the_stale_token():
    clock = Clock()
    provider = AnonymousTokenProvider(Minter(clock), "cid", clock=clock)
    first = provider.token()
    second = provider.refresh(first)
    assert second != first
    assert provider.refresh(first) == second  # a late thread with the old token gets the new one
    assert provider.mints == 2
    assert provider.user_id_for(second) == "anon_2" and provider.user_id_for(first) is None


def test_hundred_threads_one_mint():
    clock = Clock()
    minter = Minter(clock)
    provider = AnonymousTokenProvider(minter, "cid", clock=clock)
    barrier = threading.Barrier(100)
    seen: list[str] = []

    def ask() -> None:
        barrier.wait()
        seen.append(provider.token())

    threads = [threading.Thread(target=ask) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(minter.calls) == 1 and set(seen) == {"nmv_usr_1"} and len(seen) == 100


def test_exhausted_token_is_refused_with_register_link_then_rechecked():
    clock = Clock()
    provider = AnonymousTokenProvider(Minter(clock), "cid", recheck_s=600, clock=clock)
    token = provider.token()
    provider.exhausted(token, None)
    with pytest.raises(OutOfCredits) as info:
        provider.token()
    assert info.value.register_url == "https://nemovideo.com/register?bind=anon_1"
    assert provider.mints == 1  # no fresh anonymous token to dodge the credit limit
    clock.now += 601
    assert provider.token() == token
    provider.exhausted("some-other-token", "anon_x")
    assert provider.token() == token


def test_failed_mint_pauses_other_threads():
    clock = Clock()
    minter = Minter(clock, fail=RateLimited("slow down", retry_after=30))
    provider = AnonymousTokenProvider(minter, "cid", clock=clock)
    for _ in range(3):
        with pytest.raises(RateLimited):
            provider.token()
    assert len(minter.calls) == 1
    clock.now += 31
    minter.fail = None
    assert provider.token() == "nmv_usr_2"


def test_static_provider():
    provider = StaticTokenProvider("tok-a", user_id="usr_1")
    assert provider.token() == "tok-a"
    assert provider.refresh("tok-a") == "tok-a"  # reloaded: the call is retried with it (UPSTREAM.md, 1001)
    assert provider.user_id_for("tok-a") == "usr_1"
    assert "tok-a" not in repr(provider)


def test_static_provider_rereads_its_source():
    values = iter(["tok-a", "tok-a", "tok-b"])
    provider = StaticTokenProvider(source=lambda: next(values))
    assert provider.token() == "tok-a"
    assert provider.refresh("tok-a") == "tok-a"  # the source still says tok-a: retried with it
    assert provider.refresh("tok-a") == "tok-b"
    assert provider.refresh("tok-a") == "tok-b"  # already replaced


def test_static_provider_without_token():
    with pytest.raises(TokenInvalid) as info:
        StaticTokenProvider().token()
    assert not info.value.retryable


def test_static_exhaustion():
    clock = Clock()
    provider = StaticTokenProvider("tok", user_id="usr_1", recheck_s=10, clock=clock)
    provider.exhausted("tok", None)
    with pytest.raises(OutOfCredits) as info:
        provider.token()
    assert info.value.register_url is None
    clock.now += 11
    assert provider.token() == "tok"


def test_anonymous_token_repr_hides_the_token():
    tok = AnonymousToken("nmv_usr_secret", "anon_1", datetime.now(UTC) + timedelta(days=7), 100)
    assert "nmv_usr_secret" not in repr(tok) and "anon_1" in repr(tok)


def test_provider_from_settings(tmp_path):
    static = provider_from_settings(Settings(nemo_token="tok-x", data_dir=tmp_path), minter=lambda cid: None)
    assert isinstance(static, StaticTokenProvider) and static.token() == "tok-x"
    settings = Settings(nemo_token=None, nemo_client_id="my-client", data_dir=tmp_path)
    anon = provider_from_settings(settings, minter=lambda cid: None)
    assert isinstance(anon, AnonymousTokenProvider) and anon.client_id == "my-client"
    derived = provider_from_settings(Settings(nemo_token=None, data_dir=tmp_path), minter=lambda cid: None)
    assert derived.client_id == derived_client_id(Settings(data_dir=tmp_path))
    assert len(derived.client_id) <= 64 and derived.client_id.startswith("reelmill-")

"""The process's NemoVideo client, built once from settings with the shared credential store."""

from __future__ import annotations

import logging
import threading

from shared.nemo.client import NemoClient
from shared.nemo.credentials import DbTokenProvider
from shared.nemo.tokens import StaticTokenProvider, TokenProvider
from shared.pace import Limiter, PaceConfig
from shared.redis_conn import get_redis
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_client: NemoClient | None = None


def build_client(settings: Settings) -> NemoClient:
    tokens: TokenProvider
    if settings.nemo_token is not None:
        tokens = StaticTokenProvider(settings.nemo_token.get_secret_value())
        return NemoClient.from_settings(settings, tokens)
    client = NemoClient.from_settings(settings, None)
    client.tokens = DbTokenProvider(settings, client.mint_anonymous_token)
    return client


def get_client() -> NemoClient:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = build_client(get_settings())
    return _client


def cancel_render_quietly(profile: str, render_id: str) -> None:
    """Cancel an upstream render; the job is canceled on our side whatever the upstream answers (logged)."""
    from shared.nemo.errors import NemoError

    try:
        get_client().cancel_render(render_id, profile=profile)
    except NemoError as exc:
        log.warning("upstream render %s was not canceled: %s", render_id, exc)


CREDENTIAL = "default"  # one upstream credential per deployment (NEMO_TOKEN, or the anonymous token it mints)
_pace: Limiter | None = None


def get_pace() -> Limiter:
    """The process's view of the credential's pace (shared/pace): one limiter in Redis for every worker."""
    global _pace
    if _pace is None:
        with _lock:
            if _pace is None:
                from shared.domain.pace_view import holders

                config = PaceConfig.from_settings(get_settings())
                _pace = Limiter(get_redis(), CREDENTIAL, config, rebuild=holders)
    return _pace


def paced_client() -> NemoClient:
    """The process's client, every call paced: what workers use (the API's few calls go unpaced)."""
    client = get_client()
    client.pace = get_pace()
    return client

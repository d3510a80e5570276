"""The process's NemoVideo client, built once from settings with the shared credential store."""

from __future__ import annotations

import logging
import threading

from shared.nemo.client import NemoClient
from shared.nemo.credentials import DbTokenProvider
from shared.nemo.tokens import StaticTokenProvider, TokenProvider
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

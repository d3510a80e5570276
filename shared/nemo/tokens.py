"""Where NemoClient gets its bearer token: a configured one, or one anonymous token minted and reused.

Anonymous tokens are rate-limited per client id and per IP, so a process mints once and shares the token
across all its threads. After 2001 (out of credits) a provider stops handing the credential out for
``recheck_s`` (raising ``OutOfCredits``) instead of minting a fresh anonymous token: new free credits are
the registration link's business, not ours. After the pause the same credential is tried again (the user
may have registered or topped up).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from shared.nemo.errors import NemoError, OutOfCredits, TokenInvalid
from shared.nemo.wire import AnonymousToken

if TYPE_CHECKING:
    from shared.settings import Settings

MINT_FAILURE_PAUSE_S = 5.0  # after a failed mint, waiting threads fail fast instead of each minting again


class TokenProvider(Protocol):
    def token(self) -> str: ...

    def refresh(self, stale: str) -> str:
        """The token to retry a call with after ``stale`` was rejected (1001/1010/1011/401)."""
        ...

    def exhausted(self, token: str, user_id: str | None) -> None:
        """``token`` answered 2001: stop using it."""
        ...


class _CreditGate:
    """Remembers an out-of-credits credential and refuses it until ``recheck_s`` has passed."""

    def __init__(self, recheck_s: float, clock: Callable[[], float]) -> None:
        self.recheck_s = recheck_s
        self.clock = clock
        self.blocked: str | None = None
        self.user_id: str | None = None
        self.until = 0.0

    def block(self, token: str, user_id: str | None) -> None:
        self.blocked, self.user_id, self.until = token, user_id, self.clock() + self.recheck_s

    def check(self, token: str) -> None:
        if token == self.blocked and self.clock() < self.until:
            raise OutOfCredits("this NemoVideo credential is out of credits", user_id=self.user_id)


class StaticTokenProvider:
    """A configured token (``NEMO_TOKEN``). ``refresh`` re-reads ``source`` when given, else reloads the same token."""

    def __init__(
        self,
        token: str | None = None,
        *,
        source: Callable[[], str | None] | None = None,
        user_id: str | None = None,
        recheck_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self._source = source
        self._user_id = user_id
        self._gate = _CreditGate(recheck_s, clock)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StaticTokenProvider(configured={self._token is not None}, source={self._source is not None})"

    def token(self) -> str:
        with self._lock:
            if self._token is None and self._source is not None:
                self._token = self._source()
            if not self._token:
                raise TokenInvalid(
                    "no NemoVideo token configured",
                    retryable=False,
                    user_message="No NemoVideo token is configured (set NEMO_TOKEN).",
                )
            self._gate.check(self._token)
            return self._token

    def refresh(self, stale: str) -> str:
        """The token to retry with after ``stale`` was rejected: the source's newer one when it has one, else the
        configured one again. UPSTREAM.md: on 1001/1010/1011/401 reload the token and retry the call; a one-off
        rejection then costs one call, and a token that stays rejected fails its jobs once the worker's retries of
        the (retryable) rejection are spent."""
        with self._lock:
            if self._token and self._token != stale:
                return self._token
            fresh = self._source() if self._source is not None else None
            if fresh:
                self._token = fresh
            if not self._token:
                raise TokenInvalid(
                    "no NemoVideo token configured",
                    retryable=False,
                    user_message="No NemoVideo token is configured (set NEMO_TOKEN).",
                )
            return self._token

    def exhausted(self, token: str, user_id: str | None) -> None:
        with self._lock:
            self._gate.block(token, user_id or self._user_id)

    def user_id_for(self, token: str) -> str | None:
        return self._user_id if token == self._token else None


class AnonymousTokenProvider:
    """One anonymous token per client id, minted on first use and reused until ``expires_at - margin``.

    Thread-safe: a hundred threads asking at once cause one mint; the others wait for it and share it.
    """

    def __init__(
        self,
        minter: Callable[[str], AnonymousToken],
        client_id: str,
        *,
        margin_s: float = 3600,
        recheck_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._minter = minter
        self.client_id = client_id
        self._margin_s = margin_s
        self._clock = clock
        self._current: AnonymousToken | None = None
        self._valid_until = 0.0
        self._gate = _CreditGate(recheck_s, clock)
        self._failure: tuple[float, NemoError] | None = None
        self._lock = threading.Lock()
        self.mints = 0  # how many tokens this provider minted (for tests and metrics)

    def __repr__(self) -> str:
        return f"AnonymousTokenProvider(client_id={self.client_id!r}, mints={self.mints})"

    @property
    def current(self) -> AnonymousToken | None:
        return self._current

    def token(self) -> str:
        with self._lock:
            current = self._current
            if current is not None and self._clock() < self._valid_until:
                self._gate.check(current.token)
                return current.token
            return self._mint_locked().token

    def refresh(self, stale: str) -> str:
        with self._lock:
            current = self._current
            if current is not None and current.token != stale and self._clock() < self._valid_until:
                return current.token  # another thread already replaced the stale token
            return self._mint_locked().token

    def exhausted(self, token: str, user_id: str | None) -> None:
        with self._lock:
            owner = self._current.user_id if self._current and self._current.token == token else None
            self._gate.block(token, user_id or owner)

    def user_id_for(self, token: str) -> str | None:
        current = self._current
        return current.user_id if current is not None and current.token == token else None

    def _mint_locked(self) -> AnonymousToken:
        now = self._clock()
        if self._failure is not None and now < self._failure[0]:
            raise self._failure[1]
        try:
            minted = self._minter(self.client_id)
        except NemoError as exc:
            self._failure = (now + (exc.retry_after or MINT_FAILURE_PAUSE_S), exc)
            raise
        self._failure = None
        self.mints += 1
        lifetime = max(0.0, minted.expires_at.timestamp() - now)
        self._valid_until = now + lifetime - renewal_margin_s(lifetime, self._margin_s)
        self._current = minted
        return minted


def renewal_margin_s(lifetime_s: float, margin_s: float) -> float:
    """How long before its expiry a token is replaced: ``margin_s``, or half its lifetime when that is shorter (a
    short-lived token is used until half spent, not minted again for every call)."""
    return min(margin_s, lifetime_s / 2)


def derived_client_id(settings: Settings) -> str:
    """A stable X-Client-Id for this host and data directory (<= 64 characters)."""
    seed = f"reelmill:{socket.gethostname()}:{settings.data_dir.resolve()}"
    return f"reelmill-{uuid.uuid5(uuid.NAMESPACE_URL, seed)}"


def provider_from_settings(settings: Settings, minter: Callable[[str], AnonymousToken]) -> TokenProvider:
    """``NEMO_TOKEN``/``REELMILL_NEMO_TOKEN`` when configured, else anonymous tokens for the client id."""
    if settings.nemo_token is not None and settings.nemo_token.get_secret_value():
        return StaticTokenProvider(settings.nemo_token.get_secret_value())
    return AnonymousTokenProvider(minter, settings.nemo_client_id or derived_client_id(settings))

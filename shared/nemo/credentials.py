"""The upstream credential, shared by every process through one table row.

With `NEMO_TOKEN` / `REELMILL_NEMO_TOKEN` configured, that token is used as is. Otherwise one anonymous token is
minted (for a stable client id kept in the row) and reused by every worker until it expires or is rejected;
never one per job, since the upstream rate-limits minting. Minting happens under a row lock, so a hundred threads
asking at once cause one mint.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shared.db import session_scope
from shared.nemo.tokens import renewal_margin_s
from shared.nemo.wire import AnonymousToken
from shared.settings import Settings
from shared.tables import UpstreamCredential
from shared.timeutil import as_utc, utcnow

CREDENTIAL = "default"
Minter = Callable[[str], AnonymousToken]


class DbTokenProvider:
    """A `shared.nemo.tokens.TokenProvider` whose anonymous token lives in the database."""

    def __init__(self, settings: Settings, minter: Minter, *, margin_s: float = 3600.0) -> None:
        self.settings = settings
        self.minter = minter
        self.margin_s = margin_s
        self._lock = threading.Lock()
        self._cached: tuple[str, object, object] | None = None  # (token, expires_at, minted_at)

    # -- TokenProvider -------------------------------------------------------------------------------------
    def token(self) -> str:
        cached = self._cached
        if cached and self._fresh(cached[1], cached[2]):
            return cached[0]
        with self._lock:
            return self._load_or_mint(stale=None)

    def refresh(self, stale: str) -> str:
        with self._lock:
            self._cached = None
            return self._load_or_mint(stale=stale)

    def user_id_for(self, token: str) -> str | None:
        """The upstream user behind ``token`` (the 2001 message links anonymous users to registration)."""
        with session_scope() as session:
            row = session.get(UpstreamCredential, CREDENTIAL)
            return row.user_id if row is not None and row.token == token else None

    def exhausted(self, token: str, user_id: str | None) -> None:
        with session_scope() as session:
            row = session.get(UpstreamCredential, CREDENTIAL)
            if row is not None and row.token == token:
                row.exhausted_at = utcnow()
                session.add(row)

    # -- internals -----------------------------------------------------------------------------------------
    def _fresh(self, expires_at: object, minted_at: object) -> bool:
        """Whether the token has more than its renewal margin left (`renewal_margin_s`, as the in-process
        provider): each mint is another upstream user, without the sessions of the jobs in flight."""
        exp, minted = as_utc(expires_at), as_utc(minted_at)  # type: ignore[arg-type]
        if exp is None:
            return True
        margin = self.margin_s
        if minted is not None:
            margin = renewal_margin_s((exp - minted).total_seconds(), self.margin_s)
        return exp - timedelta(seconds=margin) > utcnow()

    def _load_or_mint(self, stale: str | None) -> str:
        with session_scope() as session:
            row = _locked_row(session, self.settings)
            if row.token and row.token != stale and self._fresh(row.expires_at, row.minted_at):
                self._cached = (row.token, row.expires_at, row.minted_at)
                return row.token
            minted = self.minter(row.client_id)
            row.token, row.user_id, row.expires_at = minted.token, minted.user_id, minted.expires_at
            row.minted_at, row.exhausted_at, row.mints = utcnow(), None, row.mints + 1
            session.add(row)
            self._cached = (minted.token, minted.expires_at, row.minted_at)
            return minted.token


def _locked_row(session: Session, settings: Settings) -> UpstreamCredential:
    """The credential row, locked for this transaction (created on first use)."""
    stmt = select(UpstreamCredential).where(UpstreamCredential.name == CREDENTIAL).with_for_update()
    row = session.exec(stmt).first()
    if row is not None:
        return row
    client_id = settings.nemo_client_id or f"reelmill-{uuid.uuid4()}"
    try:
        with session.begin_nested():
            session.add(UpstreamCredential(name=CREDENTIAL, kind="anonymous", client_id=client_id))
    except IntegrityError:
        pass  # another process created it first
    return session.exec(stmt).one()

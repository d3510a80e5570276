"""The credential every process shares (shared/nemo/credentials.py): a token is reused until little of it is left,
whatever its lifetime; a stale one is minted again once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.nemo import credentials
from shared.nemo.credentials import DbTokenProvider
from shared.nemo.wire import AnonymousToken
from shared.settings import get_settings
from shared.timeutil import utcnow


class Minter:
    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime, self.calls = lifetime, 0

    def __call__(self, client_id: str) -> AnonymousToken:
        self.calls += 1
        return AnonymousToken(f"tok-{self.calls}", f"anon_{self.calls}", utcnow() + self.lifetime, 100)


@pytest.fixture()
def own_row(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential row of this test's own: the session's workers keep the shared one."""
    monkeypatch.setattr(credentials, "CREDENTIAL", f"test-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("lifetime", [timedelta(days=7), timedelta(minutes=30), timedelta(seconds=20)])
def test_a_token_is_minted_once_and_reused_whatever_its_lifetime(own_row: None, lifetime: timedelta) -> None:
    minter = Minter(lifetime)
    first = DbTokenProvider(get_settings(), minter)
    other_process = DbTokenProvider(get_settings(), minter)  # reads the row, not its own cache
    tokens = {first.token() for _ in range(5)} | {other_process.token() for _ in range(5)}
    assert tokens == {"tok-1"}
    assert minter.calls == 1


def test_a_token_half_spent_is_minted_again_once(own_row: None) -> None:
    minter = Minter(timedelta(seconds=2))  # half of it (1 s) is its margin
    provider = DbTokenProvider(get_settings(), minter)
    assert provider.token() == "tok-1"
    with credentials.session_scope() as session:  # a second later: half its life is gone
        row = session.get(credentials.UpstreamCredential, credentials.CREDENTIAL)
        assert row is not None
        row.minted_at, row.expires_at = utcnow() - timedelta(seconds=1.5), utcnow() + timedelta(seconds=0.5)
        session.add(row)
    provider._cached = None
    assert provider.token() == "tok-2"
    assert provider.token() == "tok-2"
    assert minter.calls == 2


def test_a_rejected_token_is_replaced(own_row: None) -> None:
    minter = Minter(timedelta(days=7))
    provider = DbTokenProvider(get_settings(), minter)
    stale = provider.token()
    assert provider.refresh(stale) == "tok-2"
    assert provider.token() == "tok-2"
    assert minter.calls == 2

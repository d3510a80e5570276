"""after_commit callbacks run once the outermost transaction commits, never at a SAVEPOINT, never after rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from shared.db.hooks import after_commit


@pytest.fixture()
def session():
    with Session(create_engine("sqlite://")) as s:
        yield s


def test_runs_after_the_outer_commit_only(session):
    ran: list[str] = []
    with session.begin():
        with session.begin_nested():
            session.execute(text("select 1"))
            after_commit(session, lambda: ran.append("inner"))
        assert ran == [], "a released SAVEPOINT is not a commit"
        after_commit(session, lambda: ran.append("outer"))
    assert ran == ["inner", "outer"]


def test_dropped_on_rollback(session):
    ran: list[str] = []
    with pytest.raises(RuntimeError), session.begin():
        after_commit(session, lambda: ran.append("x"))
        raise RuntimeError("boom")
    with session.begin():
        pass
    assert ran == []


def test_a_failing_callback_does_not_break_the_commit(session, caplog):
    ran: list[str] = []
    with session.begin():
        after_commit(session, lambda: 1 / 0)
        after_commit(session, lambda: ran.append("second"))
    assert ran == ["second"]
    assert "after-commit callback failed" in caplog.text

"""A scheduler round is marked in Redis while it runs (services/worker/scheduler.py `ROUND_KEY_PREFIX`): whoever
takes the lease over can wait until no round begun under the old leader still admits jobs."""

from __future__ import annotations

import pytest

from services.worker import scheduler
from shared.ids import new_id
from shared.redis_conn import get_redis


def test_a_round_is_marked_while_it_runs_and_not_after(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = new_id("sched")
    key = scheduler.ROUND_KEY_PREFIX + owner
    seen: list[bool] = []
    monkeypatch.setattr(scheduler, "dispatch_due", lambda limit=scheduler.BATCH: 0)
    monkeypatch.setattr(scheduler, "lead", lambda who: True)
    monkeypatch.setattr(scheduler, "_lead_round", lambda: seen.append(bool(get_redis().exists(key))))
    scheduler.tick(owner)
    assert seen == [True]
    assert not get_redis().exists(key)


def test_a_round_that_fails_still_clears_its_mark(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = new_id("sched")
    monkeypatch.setattr(scheduler, "dispatch_due", lambda limit=scheduler.BATCH: 0)

    def broken(who: str) -> bool:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(scheduler, "lead", broken)
    with pytest.raises(RuntimeError):
        scheduler.tick(owner)
    assert not get_redis().exists(scheduler.ROUND_KEY_PREFIX + owner)

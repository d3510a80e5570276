"""Redis unreachable: every caller gets "not now" with a hint, nothing raises, the outage is logged once."""

from __future__ import annotations

import logging
import time

from shared.pace import Limiter, PaceConfig, Reason


def test_redis_down_means_not_now_and_back_means_rebuilt(private_redis, caplog) -> None:
    truth = {"streams": {"still-streaming": time.time() + 60}}
    limiter = Limiter(private_redis.client(), "default", PaceConfig(max_streams=2), rebuild=lambda cred: truth)
    assert limiter.acquire("streams", "a", 30)
    private_redis.stop()

    caplog.set_level(logging.WARNING, logger="shared.pace.limiter")
    refused = limiter.acquire("streams", "b", 30)
    assert not refused and refused.reason is Reason.UNAVAILABLE and refused.retry_after_s == 5.0
    assert limiter.take("call") == 5.0
    assert limiter.take_grant("stream").reason is Reason.UNAVAILABLE
    assert limiter.release("streams", "a") == 0
    assert limiter.renew("streams", ["a"], 30) == []
    assert limiter.penalize("call", 10) == 0.0
    assert limiter.reward("call") is False
    assert limiter.pause_remaining("call") == 0.0
    assert limiter.holders("streams") == {} and limiter.in_flight("renders") == 0
    assert limiter.snapshot().available is False
    down_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down_lines) == 1

    private_redis.start()  # a restart: the state is gone, the database's view comes back
    grant = limiter.acquire("streams", "b", 30)
    assert grant and grant.reason is Reason.OK
    assert set(limiter.holders("streams")) == {"still-streaming", "b"}
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert limiter.acquire("streams", "c", 30).reason is Reason.FULL

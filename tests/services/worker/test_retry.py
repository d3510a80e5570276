"""The retry policy (services/worker/retry.py): what each error means for the job."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from services.worker import retry
from services.worker.outcome import Fail, NewSession, RetryAfter, Throttle
from shared.nemo import errors as ne
from shared.settings import get_settings
from shared.tables import Stage


def test_terminal_errors_fail_with_the_users_message():
    outcome = retry.decide(ne.OutOfCredits("no credits", user_message="top up at X"), 0, Stage.message)
    assert outcome == Fail("out_of_credits", "top up at X")


@pytest.mark.parametrize(
    ("stage", "resource"), [(Stage.message, "streams"), (Stage.render_poll, "renders"), (Stage.session, "calls")]
)
def test_a_429_throttles_and_never_spends_an_attempt(stage, resource):
    many = get_settings().max_step_attempts + 5
    outcome = retry.decide(ne.RateLimited("slow down", retry_after=12.0), many, stage)
    assert isinstance(outcome, Throttle) and outcome.resource == resource and outcome.wait_s == 12.0
    no_header = retry.decide(ne.RateLimited("slow down"), 0, stage)
    assert no_header.wait_s == get_settings().rate_limit_wait_s


def test_transient_errors_back_off_then_give_up():
    outcome = retry.decide(ne.UpstreamUnavailable("502"), 0, Stage.verify)
    assert isinstance(outcome, RetryAfter) and outcome.spend and outcome.delay_s > 0
    last = get_settings().max_step_attempts - 1
    final = retry.decide(ne.UpstreamUnavailable("502"), last, Stage.verify)
    assert isinstance(final, Fail) and final.code == "upstream_unavailable" and "attempts" in final.message


def test_a_lost_session_starts_a_new_one_until_too_many_were_lost():
    assert isinstance(retry.decide(ne.SessionNotFound("1002"), 0, Stage.message), NewSession)
    many = get_settings().max_step_attempts - 1
    final = retry.decide(ne.SessionNotFound("1002"), 0, Stage.message, sessions_lost=many)
    assert isinstance(final, Fail) and final.code == "upstream_unavailable" and "session" in final.message


@pytest.mark.parametrize(
    "exc", [OperationalError("SELECT 1", {}, Exception("server closed")), RedisConnectionError("gone")]
)
def test_reelmills_own_trouble_never_spends_an_attempt(exc):
    outcome = retry.decide(exc, get_settings().max_step_attempts + 3, Stage.verify)
    assert isinstance(outcome, RetryAfter) and not outcome.spend


def test_a_bug_is_retried_then_fails_internal():
    assert isinstance(retry.decide(KeyError("x"), 0, Stage.verify), RetryAfter)
    final = retry.decide(KeyError("x"), get_settings().max_step_attempts, Stage.verify)
    assert isinstance(final, Fail) and final.code == "internal"

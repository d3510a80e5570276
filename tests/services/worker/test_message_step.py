"""The message step against the simulator (no worker, no database): a message refused before its stream began is
recorded as not sent and sent by the retry; a send whose fate is unknown is never sent again while its edit may
still run, and counts as landed only once the draft changed and held still."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.worker.outcome import Advance, RetryAfter
from services.worker.steps import message
from shared.ids import new_id
from shared.nemo.draft import EMPTY_DRAFT, draft_fingerprint
from shared.nemo.errors import NemoError, RateLimited, UpstreamUnavailable
from shared.tables import MessageState, Stage
from shared.timeutil import utcnow
from tests.services.worker.steps_helpers import client_for, context


@pytest.fixture()
def client(sim):
    sim.configure(silent_share=0.0, temporary_issue_share=0.0, message_seconds=20.0)
    with client_for(sim) as c:
        yield c


def fresh(client, **fields):
    info = client.create_session(profile="free-kling-ai-video-generation")
    return context(client, Stage.message, session_id=info.session_id, draft_fp=EMPTY_DRAFT, **fields)


@pytest.mark.parametrize(
    ("kind", "error"),
    [("http_429", RateLimited), ("http_503", UpstreamUnavailable), ("http_502", NemoError), ("code_1002", NemoError)],
)
def test_a_message_refused_before_its_stream_began_is_recorded_as_not_sent(client, sim, kind, error):
    ctx = fresh(client)
    sim.fault("run_sse", kind, times=1, retry_after=1)
    with pytest.raises(error) as raised:
        message.message(ctx)
    assert raised.value.sent is False
    assert ctx.turn.message_state == MessageState.pending, "the retry sends it"
    assert ctx.checkpoints[-1] == {"message_state": MessageState.pending}
    outcome = message.message(ctx)
    assert isinstance(outcome, Advance) and ctx.turn.message_state == MessageState.sending
    assert outcome.turn["message_state"] == MessageState.sent
    assert len(sim.session(ctx.job.session_id)["messages"]) == 1, "sent exactly once"


def test_a_first_send_needs_no_state_read(client, sim):
    ctx = fresh(client)
    message.message(ctx)
    assert sim.session_count(ctx.job.session_id, "state") == 0
    assert ctx.turn.draft_before == EMPTY_DRAFT


def test_an_unknown_draft_is_read_before_the_send(client, sim):
    ctx = fresh(client)
    ctx.job.draft_fp = None  # e.g. after an upload
    message.message(ctx)
    assert sim.session_count(ctx.job.session_id, "state") == 1


def test_an_unknown_send_with_no_edit_yet_waits_without_sending(client, sim):
    ctx = fresh(client)
    ctx.turn.message_state, ctx.turn.draft_before = MessageState.sending, EMPTY_DRAFT
    ctx.turn.message_sent_at = utcnow() - timedelta(seconds=1)
    outcome = message.message(ctx)
    assert isinstance(outcome, RetryAfter) and not outcome.spend
    assert "may still be running" in outcome.reason
    assert sim.session_count(ctx.job.session_id, "run_sse") == 0


def test_a_fresh_sessions_empty_draft_in_any_form_is_no_edit(client, sim):
    for form in (None, {}, {"t": []}, {"t": [{"tt": 0, "sg": []}]}):
        assert draft_fingerprint(form) == EMPTY_DRAFT
    ctx = fresh(client)
    ctx.turn.message_state, ctx.turn.draft_before = MessageState.sending, draft_fingerprint({})
    ctx.turn.message_sent_at = utcnow()
    assert isinstance(message.message(ctx), RetryAfter), "an empty draft is not a landed edit"


def test_after_the_cap_a_message_that_never_ran_is_sent_again(client, sim):
    ctx = fresh(client)
    ctx.turn.message_state, ctx.turn.draft_before = MessageState.sending, EMPTY_DRAFT
    ctx.turn.message_sent_at = utcnow() - timedelta(seconds=ctx.settings.sse_max_s + 1)
    outcome = message.message(ctx)
    assert isinstance(outcome, RetryAfter) and outcome.turn == {"message_state": MessageState.pending}
    assert outcome.delay_s == 0 and not outcome.spend


def test_a_landed_edit_counts_once_the_draft_holds_still(client, sim):
    ctx = fresh(client)
    message.message(ctx)  # the edit lands upstream
    sim.wait_idle()
    ctx.turn.message_state = MessageState.sending  # as if the worker had died mid-stream
    ctx.turn.message_sent_at = utcnow()
    first = message.message(ctx)
    assert isinstance(first, RetryAfter) and not first.spend and first.job["draft_fp"] != EMPTY_DRAFT
    ctx.job.draft_fp = first.job["draft_fp"]
    second = message.message(ctx)
    assert isinstance(second, Advance) and second.turn == {"message_state": MessageState.sent}
    assert len(sim.session(ctx.job.session_id)["messages"]) == 1, "never sent twice"


def test_a_refused_connection_is_not_a_send(sim):
    from shared.nemo.client import NemoClient
    from shared.nemo.errors import UpstreamConnectionError
    from shared.nemo.tokens import StaticTokenProvider
    from tests.utils.net import free_port

    with NemoClient(f"http://127.0.0.1:{free_port()}", StaticTokenProvider("nmv_usr_x")) as down:
        ctx = context(down, Stage.message, session_id="1", draft_fp=EMPTY_DRAFT)
        with pytest.raises(UpstreamConnectionError) as raised:
            message.message(ctx)
    assert raised.value.sent is False and ctx.turn.message_state == MessageState.pending


class _HeldBack:
    """A pace that holds every call back for five seconds."""

    def take(self, cls: str) -> float:
        return 5.0


def test_a_send_the_pace_held_back_is_not_an_attempt(client, sim):
    from shared.nemo.errors import Paced

    ctx = fresh(client)
    client.pace = _HeldBack()
    with pytest.raises(Paced):
        message.message(ctx)
    assert ctx.turn.message_state == MessageState.pending and ctx.turn.message_attempts == 0
    assert sim.session(ctx.job.session_id)["messages"] == [], "nothing reached the upstream"
    client.pace = None
    message.message(ctx)
    assert ctx.turn.message_attempts == 1 and len(sim.session(ctx.job.session_id)["messages"]) == 1


class _Briefly:
    """A pace that holds every call back for ``wait_s`` (a round's grants all calling at once)."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s

    def take(self, cls: str) -> float:
        return self.wait_s


@pytest.fixture()
def granted(client, redis_url):
    """A job at its message step holding the stream slot the scheduler granted it (the only one), with others
    waiting in the scheduler's line."""
    import redis

    from shared.pace import Limiter, PaceConfig

    conn = redis.Redis.from_url(redis_url)
    pace = Limiter(conn, f"t-{new_id('c')[-12:]}", PaceConfig(max_streams=1), rebuild=lambda cred: {})
    ctx = fresh(client)
    ctx.pace = pace
    assert pace.acquire("streams", ctx.job.id, 30)  # the scheduler's grant
    pace.mark_line("streams", True, 30)
    yield ctx, pace
    conn.close()


def test_a_short_pace_wait_keeps_the_granted_stream_slot(client, sim, granted):
    from shared.nemo.errors import Paced

    ctx, pace = granted
    client.pace = _Briefly(0.01)
    with pytest.raises(Paced):
        message.message(ctx)
    assert not pace.acquire("streams", "job_next_in_line", 30), "the slot stayed the job's"
    client.pace = None
    outcome = message.message(ctx)  # back after its wait: the slot is still its own, the line is not rejoined
    assert isinstance(outcome, Advance), outcome
    assert len(sim.session(ctx.job.session_id)["messages"]) == 1


def test_a_long_pace_wait_gives_the_stream_slot_back(client, sim, granted):
    from shared.nemo.errors import Paced

    ctx, pace = granted
    client.pace = _Briefly(message.KEEP_SLOT_WAIT_S + 1)
    with pytest.raises(Paced):
        message.message(ctx)
    assert pace.acquire("streams", "job_next_in_line", 30), "the slot went to the line meanwhile"

"""verify after a silent stream (about 30% of edits say nothing): the state is the only word on the edit, so an edit
that does not show yet is looked at again before the turn goes on, and a turn that goes on without one says so."""

from __future__ import annotations

import pytest

from services.worker.outcome import Advance, RetryAfter
from services.worker.steps import verify
from services.worker.steps.verify import EMPTY_DRAFT_RETRIES
from shared.nemo.draft import EMPTY_DRAFT, draft_fingerprint
from shared.tables import Stage
from tests.services.worker.steps_helpers import client_for, context


@pytest.fixture()
def edited(sim):
    """A client and a session whose draft one message has already edited (export-ready)."""
    sim.configure(silent_share=0.0, temporary_issue_share=0.0, message_seconds=1.0)
    with client_for(sim) as client:
        info = client.create_session(profile="free-kling-ai-video-generation")
        client.send_message(info.session_id, "a fox running through a snowy forest at dusk")
        draft = client.get_state(info.session_id).draft
        yield client, info.session_id, draft_fingerprint(draft)


def silent_turn(client, session_id: str, draft_before: str, attempts: int = 0):
    ctx = context(client, Stage.verify, session_id=session_id, attempts=attempts)
    ctx.turn.intent, ctx.turn.silent, ctx.turn.messages, ctx.turn.draft_before = "sse", True, [], draft_before
    return ctx


def test_a_silent_edit_that_shows_in_the_state_goes_on(edited):
    client, session_id, _ = edited
    outcome = verify.verify(silent_turn(client, session_id, EMPTY_DRAFT))
    assert isinstance(outcome, Advance)
    assert outcome.turn["messages"][-1].startswith("The edit was applied.")


def test_a_silent_edit_not_in_the_state_yet_is_looked_at_again(edited):
    client, session_id, fingerprint = edited
    outcome = verify.verify(silent_turn(client, session_id, fingerprint))  # the draft as it was before the send
    assert isinstance(outcome, RetryAfter), outcome
    assert outcome.job == {"draft_fp": fingerprint}


def test_a_silent_turn_whose_draft_never_changed_goes_on_and_says_so(edited):
    client, session_id, fingerprint = edited
    outcome = verify.verify(silent_turn(client, session_id, fingerprint, attempts=EMPTY_DRAFT_RETRIES))
    assert isinstance(outcome, Advance)
    assert outcome.turn["messages"][-1].startswith("NemoVideo reported no change to the timeline.")

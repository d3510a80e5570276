"""The render poll of a turn with no render on record (a row no step could have written: the submit step records
the id before its request) submits the render instead of polling an empty id again and again."""

from __future__ import annotations

from services.worker import flow
from services.worker.outcome import Advance
from services.worker.steps import render
from shared.tables import Stage
from shared.timeutil import utcnow
from tests.services.worker.steps_helpers import client_for, context


def test_a_poll_with_no_render_on_record_goes_back_to_submit(sim):
    with client_for(sim) as client:
        ctx = context(client, Stage.render_poll, session_id="s")
        polls_before = sim.endpoint_count("render_status")
        outcome = render.poll(ctx)
    assert isinstance(outcome, Advance) and outcome.stage == Stage.render_submit
    assert sim.endpoint_count("render_status") == polls_before, "no poll of an empty id"
    plan = flow.decide(ctx.job, ctx.turns, outcome, now=utcnow(), progress_every_s=60)
    assert ctx.job.stage == Stage.render_submit, plan

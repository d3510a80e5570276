"""The render poll of a turn with no render on record (a row no step could have written: the submit step records
the id before its request) submits the render instead of polling an empty id again and again."""

from __future__ import annotations

from services.worker import flow
from services.worker.outcome import Advance, Fail
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


def _failed_render_turn(sim, client, renders_failed: int):
    """A turn whose render (of a real draft) NemoVideo says failed."""
    sim.configure(silent_share=0.0, message_seconds=1.0, render_seconds=0.0, render_fail_share=1.0)
    info = client.create_session(profile="free-kling-ai-video-generation")
    client.send_message(info.session_id, "a fox running through a snowy forest at dusk")
    ctx = context(client, Stage.render_poll, session_id=info.session_id)
    ctx.turn.draft, ctx.turn.renders_failed = client.get_state(info.session_id).draft, renders_failed
    ctx.turn.render_id = render.new_render_id(ctx.job.id, ctx.turn.seq)
    client.submit_render(ctx.turn.render_id, info.session_id, ctx.turn.draft or {})
    ctx.turn.render_submitted = True
    return ctx, info.session_id


def test_a_render_that_failed_upstream_is_submitted_again_under_a_new_id(sim):
    with client_for(sim) as client:
        ctx, session_id = _failed_render_turn(sim, client, renders_failed=0)
        failed_id = ctx.turn.render_id
        outcome = render.poll(ctx)
        assert isinstance(outcome, Advance) and outcome.stage == Stage.render_submit, outcome
        flow.decide(ctx.job, ctx.turns, outcome, now=utcnow(), progress_every_s=60)
        assert ctx.turn.render_id is None and ctx.turn.renders_failed == 1
        sim.configure(render_fail_share=0.0)
        again = render.submit(ctx)
    assert isinstance(again, Advance) and again.stage == Stage.render_poll
    assert ctx.turn.render_id not in (None, failed_id)
    assert len(sim.session(session_id)["renders"]) == 2, "the failed render and one new one"


def test_a_render_that_keeps_failing_fails_the_job_after_its_retries(sim, settings_env):
    settings_env(REELMILL_RENDER_RETRIES="2")
    with client_for(sim) as client:
        ctx, _ = _failed_render_turn(sim, client, renders_failed=2)
        outcome = render.poll(ctx)
    assert isinstance(outcome, Fail) and outcome.code == "render_failed", outcome
    assert "3 of 3 tries" in outcome.message

"""The flow alone (services/worker/flow.py): every outcome, what it does to the job and its turns. No database,
no worker: plain rows in memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.worker import flow
from services.worker.flow import Then
from services.worker.outcome import (
    Advance,
    Cancel,
    Fail,
    Finish,
    NewSession,
    NextTurn,
    RetryAfter,
    Throttle,
)
from shared.tables import Job, JobStatus, JobTurn, MessageState, Stage, TurnStatus
from shared.timeutil import utcnow

NOW = utcnow()


def job_at(stage: Stage, *, turns: int = 1, status: JobStatus = JobStatus.processing, **fields) -> tuple[Job, list]:
    job = Job(id="job_x", tenant_id="ten_x", profile="p", prompt="a fox", stage=stage, status=status, **fields)
    rows = [JobTurn(id=i + 1, job_id=job.id, seq=i, instruction=f"turn {i}") for i in range(turns)]
    return job, rows


def decide(job, turns, outcome):
    return flow.decide(job, turns, outcome, now=NOW, progress_every_s=2.0)


def test_advance_runs_the_next_short_stage_here():
    job, turns = job_at(Stage.session, session_id=None, status=JobStatus.starting)
    plan = decide(job, turns, Advance(job={"session_id": "123"}))
    assert job.stage == Stage.upload and job.session_id == "123"
    assert plan.then == Then.RUN_HERE
    assert ("job.stage", {"stage": "upload"}) in plan.events
    assert job.status == JobStatus.processing and plan.status == JobStatus.processing


def test_advance_to_the_message_goes_to_the_streams_queue():
    job, turns = job_at(Stage.upload, session_id="s")
    plan = decide(job, turns, Advance(turn={"upload_done": True}))
    assert job.stage == Stage.message and plan.then == Then.DISPATCH and plan.wait_s == 0
    assert turns[0].upload_done and turns[0].status == TurnStatus.running


def test_a_render_poll_waits_its_interval():
    job, turns = job_at(Stage.render_poll, session_id="s")
    plan = decide(job, turns, Advance(stage=Stage.render_poll, wait_s=30, turn={"render_progress": 50}))
    assert plan.then == Then.DISPATCH and plan.wait_s == 30
    assert job.progress == flow.progress(Stage.render_poll, 50)
    assert plan.events == [] and plan.progress_event


def test_progress_events_are_spaced():
    job, turns = job_at(Stage.render_poll, session_id="s", last_progress_event_at=NOW - timedelta(seconds=1))
    plan = decide(job, turns, Advance(stage=Stage.render_poll, wait_s=30, turn={"render_progress": 60}))
    assert job.progress > 0 and not plan.progress_event


def test_retry_spends_an_attempt_and_a_wait_does_not():
    job, turns = job_at(Stage.verify, session_id="s", attempts=2)
    plan = decide(job, turns, RetryAfter(3.0, "transient"))
    assert job.attempts == 3 and plan.then == Then.DISPATCH and plan.wait_s == 3.0 and plan.spent_attempt
    plan = decide(job, turns, RetryAfter(5.0, "edit still running", spend=False, job={"draft_fp": "abc"}))
    assert job.attempts == 3 and not plan.spent_attempt and job.draft_fp == "abc"
    assert job.stage == Stage.verify


def test_throttle_parks_the_job_and_remembers_its_stage():
    job, turns = job_at(Stage.message, session_id="s", attempts=1)
    plan = decide(job, turns, Throttle("streams", wait_s=30.0, reason="429"))
    assert job.stage == Stage.throttled and job.resume_stage == Stage.message
    assert job.attempts == 1, "waiting for capacity spends nothing"
    assert plan.then == Then.DISPATCH and plan.wait_s == 30.0
    assert plan.events[0][0] == "job.throttled" and plan.events[0][1]["resource"] == "streams"
    assert flow.resume(job) == Stage.message and job.stage == Stage.message and job.resume_stage is None


def test_throttle_without_a_known_wait_waits_for_a_grant():
    job, turns = job_at(Stage.render_submit, session_id="s")
    plan = decide(job, turns, Throttle("renders"))
    assert plan.then == Then.WAIT and job.resume_stage == Stage.render_submit


def test_a_lost_session_replays_every_turn_so_far():
    job, turns = job_at(Stage.message, turns=2, session_id="s", turn_index=1, draft_fp="f")
    turns[0].status, turns[0].upload_done, turns[0].message_state = TurnStatus.succeeded, True, MessageState.sent
    turns[1].upload_done, turns[1].message_state = True, MessageState.sending
    plan = decide(job, turns, NewSession())
    assert job.session_id is None and job.turn_index == 0 and job.stage == Stage.session
    assert job.draft_fp is None and job.sessions_lost == 1 and plan.then == Then.DISPATCH
    assert all(not t.upload_done and t.message_state == MessageState.pending for t in turns)
    assert flow.turn_path(turns[0]) == flow.REPLAY_PATHS["sse"], "a succeeded turn only rebuilds its timeline"


def test_a_lost_session_on_a_follow_up_is_replayed_too():
    job, turns = job_at(Stage.message, turns=2, session_id="s", turn_index=1)
    turns[0].status = TurnStatus.succeeded
    turns[1].kind = "revision"
    plan = decide(job, turns, NewSession())
    assert plan.then == Then.DISPATCH and job.stage == Stage.session and job.turn_index == 0
    assert job.status == JobStatus.processing


def test_a_lost_session_on_a_follow_up_whose_files_are_gone_offers_a_new_job():
    files = [{"path": "/gone/clip.mp4", "filename": "clip.mp4", "size": 1}]
    job, turns = job_at(Stage.message, turns=2, session_id="s", turn_index=1, files=files)
    turns[0].status = TurnStatus.succeeded
    turns[1].kind = "revision"
    plan = decide(job, turns, NewSession())
    assert plan.then == Then.END and job.status == JobStatus.failed and job.error_code == "session_expired"
    assert turns[1].suggested_job["steps"][0]["text"] == "turn 0"
    assert turns[1].status == TurnStatus.failed and turns[1].completed_at is not None


def test_next_turn_starts_in_the_same_session():
    job, turns = job_at(Stage.record, turns=2, session_id="s")
    plan = decide(job, turns, NextTurn(job={"output": {"url": "u"}}))
    assert turns[0].status == TurnStatus.succeeded and job.turn_index == 1 and job.stage == Stage.upload
    assert job.output == {"url": "u"} and plan.then == Then.RUN_HERE


def test_finish_succeeds_the_job():
    job, turns = job_at(Stage.record, session_id="s")
    plan = decide(job, turns, Finish(job={"output": {"url": "u"}}))
    assert plan.then == Then.END and plan.status == JobStatus.succeeded
    assert job.status == JobStatus.succeeded and job.stage == Stage.done and job.progress == 100
    assert turns[0].status == TurnStatus.succeeded and job.completed_at == NOW


def test_finish_runs_a_follow_up_that_arrived_meanwhile():
    job, turns = job_at(Stage.record, turns=2, session_id="s")
    turns[1].kind = "revision"
    plan = decide(job, turns, Finish())
    assert job.status == JobStatus.processing and job.turn_index == 1 and plan.then != Then.END


def test_fail_ends_every_open_turn():
    job, turns = job_at(Stage.verify, turns=3, session_id="s", turn_index=1)
    turns[0].status = TurnStatus.succeeded
    plan = decide(job, turns, Fail("empty_draft", "no timeline"))
    assert plan.then == Then.END and job.status == JobStatus.failed and job.error_code == "empty_draft"
    assert [t.status for t in turns] == [TurnStatus.succeeded, TurnStatus.failed, TurnStatus.failed]


def test_out_of_credits_in_a_batch_pauses_instead_of_failing():
    job, turns = job_at(Stage.message, session_id="s", batch_id="bat_1")
    turns[0].message_state = MessageState.sending
    plan = decide(job, turns, Fail("out_of_credits", "top up"))
    assert plan.then == Then.WAIT and plan.pause_batch == "top up"
    assert job.status == JobStatus.queued and job.stage == Stage.queued
    assert turns[0].message_state == MessageState.pending


def test_cancel_names_the_render_to_cancel():
    job, turns = job_at(Stage.render_poll, session_id="s")
    plan = decide(job, turns, Cancel(render_id="render_1"))
    assert plan.then == Then.END and plan.cancel_render == "render_1" and job.status == JobStatus.canceled
    assert turns[0].status == TurnStatus.canceled


def test_setup_stages_make_the_job_starting():
    job, turns = job_at(Stage.credential, status=JobStatus.queued)
    plan = decide(job, turns, Advance(stage=Stage.session))
    assert job.status == JobStatus.starting and plan.status == JobStatus.starting and job.started_at == NOW


@pytest.mark.parametrize("stage", [Stage.queued, Stage.done, Stage.throttled])
def test_stages_no_worker_runs_raise(stage):
    with pytest.raises(ValueError):
        flow.check_runnable(stage)


def test_progress_is_the_revision_in_flight():
    job, turns = job_at(Stage.verify, turns=2, session_id="s", turn_index=1, progress=100)
    turns[0].status = TurnStatus.succeeded
    turns[1].kind = "revision"
    job.progress = 0  # reopened by the follow-up
    decide(job, turns, Advance())
    assert job.progress == flow.progress(Stage.render_submit)
    steps_job, steps = job_at(Stage.verify, turns=2, session_id="s", turn_index=1)
    decide(steps_job, steps, Advance())
    assert steps_job.progress == flow.progress(Stage.render_submit, 0, 1, 2), "the job's steps are one revision"

"""A throttled job leaves `throttled` in the database as a worker claims it (services/worker/runner.py `claim`),
not when its step ends: a job streaming on the slot the scheduler granted it is no longer in the scheduler's line
(what the API shows, what the fairness benchmark counts as waiting), and the pace's rebuild after a Redis flush
counts its stream (shared/domain/pace_view.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from services.worker import runner
from services.worker.outcome import Throttle
from shared.db import session_scope
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row, turn_rows
from shared.domain.pace_view import holders
from shared.domain.tenants import get_or_create_tenant
from shared.ids import new_id
from shared.tables import Event, Job, JobStatus, Stage
from tests.batches.helpers import end_open_jobs, recording, scheduler_held


@pytest.fixture()
def tenant_name(database: str, redis_url: str) -> Iterator[str]:
    name = f"claim-{new_id('t')[-8:]}"
    with scheduler_held(), recording():  # no session-wide scheduler grants the test's job meanwhile
        yield name
    end_open_jobs(name)


def _throttled(tenant_name: str, resume: Stage) -> str:
    """A job waiting in the database for a slot, as the scheduler leaves it once it granted one."""
    with session_scope() as session:
        spec = JobSpec(prompt="x")
        job = new_job_row(get_or_create_tenant(session, tenant_name).id, spec)
        job.stage, job.resume_stage, job.status = Stage.throttled, resume, JobStatus.processing
        session.add(job)
        session.add_all(turn_rows(job.id, spec))
        return job.id


def _row(job_id: str) -> tuple[Stage, Stage | None, list[tuple[str, dict]]]:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        events = session.exec(select(Event.type, Event.data).where(Event.job_id == job_id).order_by(Event.seq)).all()
        return Stage(job.stage), job.resume_stage, [(t, d) for t, d in events]


def test_a_claimed_throttled_job_is_at_its_stage_in_the_database(tenant_name: str) -> None:
    job_id = _throttled(tenant_name, Stage.message)
    step = runner.claim(job_id, 0, "worker-under-test")
    assert step is not None
    stage, resume, events = _row(job_id)
    assert (stage, resume) == (Stage.message, None), "streaming, not waiting in line for a slot"
    assert events == [("job.stage", {"stage": "message"})], "the stage change is told as it happens"
    assert step.ctx.job.stage == Stage.message and step.resumed is None, "the step's end tells it no second time"
    assert job_id in holders("default")["streams"], "a Redis rebuild counts its stream"


def test_a_claimed_job_that_was_not_throttled_is_left_as_it_was(tenant_name: str) -> None:
    job_id = _throttled(tenant_name, Stage.message)
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.stage, job.resume_stage = Stage.session, None
        session.add(job)
    step = runner.claim(job_id, 0, "worker-under-test")
    assert step is not None and step.ctx.job.stage == Stage.session
    assert _row(job_id) == (Stage.session, None, [])


def test_a_pause_already_over_after_a_stream_goes_through_the_queue(tenant_name: str) -> None:
    """A stream's 429 whose `Retry-After` date has already passed is a throttle with no wait. Met on the event
    loop, where short stages due now run on in the same task, it must not run here at stage `throttled` (no
    handler runs that stage: the job failed `internal`); it goes to its queue and the claim there resumes it."""
    job_id = _throttled(tenant_name, Stage.message)
    step = runner.claim(job_id, 0, "worker-under-test")
    assert step is not None
    after = runner.apply(step, Throttle("streams", wait_s=0.0, reason="429, Retry-After in the past"), keep_short=True)
    assert after is None, "not run in this task"
    stage, resume, _ = _row(job_id)
    assert (stage, resume) == (Stage.throttled, Stage.message)
    again = runner.claim(job_id, 1, "worker-under-test")
    assert again is not None and again.ctx.job.stage == Stage.message, "its queue's claim resumes the stream"

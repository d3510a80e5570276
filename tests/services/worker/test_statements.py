"""The worker's writes are statements built once and reused (services/worker/statements.py): they still land only
while the worker holds the job's lease for the step, and write exactly the fields that changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update
from sqlmodel import select

from services.worker import lease, runner, statements
from services.worker.context import LeaseLost
from services.worker.outcome import Advance
from shared.db import session_scope
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row, turn_rows
from shared.domain.tenants import get_or_create_tenant
from shared.ids import new_id
from shared.tables import Job, JobStatus, JobTurn, MessageState, Stage
from tests.batches.helpers import end_open_jobs, recording, scheduler_held

OWNER = "worker-under-test"


@pytest.fixture()
def tenant_name(database: str, redis_url: str) -> Iterator[str]:
    name = f"stmt-{new_id('t')[-8:]}"
    with scheduler_held(), recording():
        yield name
    end_open_jobs(name)


def _job(tenant_name: str) -> str:
    with session_scope() as session:
        spec = JobSpec(prompt="x")
        job = new_job_row(get_or_create_tenant(session, tenant_name).id, spec)
        job.stage, job.status = Stage.verify, JobStatus.processing
        session.add(job)
        session.add_all(turn_rows(job.id, spec))
        return job.id


def _rows(job_id: str) -> tuple[Job, JobTurn]:
    with session_scope() as session:
        job = session.get(Job, job_id)
        turn = session.exec(select(JobTurn).where(JobTurn.job_id == job_id)).one()
        assert job is not None
        return job, turn


def _take_over(job_id: str) -> None:
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_owner="someone-else"))


def test_a_claim_takes_a_free_lease_once(tenant_name: str) -> None:
    job_id = _job(tenant_name)
    assert runner.claim(job_id, 1, OWNER) is None, "another step's task"
    step = runner.claim(job_id, 0, OWNER)
    assert step is not None and step.ctx.job.lease_owner == OWNER and step.ctx.job.lease_until is not None
    assert runner.claim(job_id, 0, "another-worker") is None, "the lease is held"
    lease.release(job_id, OWNER)
    with session_scope() as session:
        assert lease.claim(session, job_id, 0, "another-worker") is not None, "released: claimed again"


def test_a_checkpoint_lands_while_the_lease_is_ours_only(tenant_name: str) -> None:
    job_id = _job(tenant_name)
    step = runner.claim(job_id, 0, OWNER)
    assert step is not None
    step.ctx.checkpoint(message_state=MessageState.sending, draft_before="fp1")
    _, turn = _rows(job_id)
    assert (turn.message_state, turn.draft_before) == (MessageState.sending, "fp1")
    _take_over(job_id)
    with pytest.raises(LeaseLost):
        step.ctx.checkpoint(draft_before="fp2")
    assert _rows(job_id)[1].draft_before == "fp1", "nothing written once the lease is another's"


def test_an_outcome_writes_the_changed_fields_under_the_lease(tenant_name: str) -> None:
    job_id = _job(tenant_name)
    step = runner.claim(job_id, 0, OWNER)
    assert step is not None
    draft = {"tracks": [{"segments": [{"id": 1}]}]}
    following = runner.apply(step, Advance(turn={"draft": draft, "timeline": "one track"}, job={"draft_fp": "fp"}))
    job, turn = _rows(job_id)
    assert (job.step_seq, job.draft_fp, turn.draft, turn.timeline) == (1, "fp", draft, "one track")
    assert following is step and job.lease_owner == OWNER, "the render's submit runs here next, under the lease"

    _take_over(job_id)
    assert runner.apply(step, Advance(turn={"timeline": "lost"})) is None
    job, turn = _rows(job_id)
    assert (job.step_seq, job.lease_owner, turn.timeline) == (1, "someone-else", "one track"), "the write was dropped"


def test_statements_are_built_once_per_set_of_columns() -> None:
    assert statements.job_update(("stage", "step_seq")) is statements.job_update(("stage", "step_seq"))
    assert statements.turn_checkpoint(("render_id",)) is statements.turn_checkpoint(("render_id",))
    assert statements.set_params({"stage": Stage.record}) == {"v_stage": Stage.record}

"""`queue_position` (shared/domain/queue_position.py) against the database: the order the scheduler starts a
tenant's waiting jobs in (priority, then its batches and single jobs taking turns, each oldest first), in one
statement for a whole page; null once a job started or while its batch is paused; other tenants never count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from shared.db import session_scope
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row
from shared.domain.queue_position import page_positions, queue_position, queue_positions
from shared.domain.tenants import get_or_create_tenant
from shared.ids import new_id
from shared.tables import Batch, BatchStatus, Job, JobStatus, Stage
from tests.batches.helpers import end_open_jobs, scheduler_held


class Queue:
    """Jobs written in a known age order: ids sort by creation, so each gets the next id of one base."""

    def __init__(self, tenant_name: str) -> None:
        self.tenant_name = tenant_name
        with session_scope() as session:
            self.tenant_id = get_or_create_tenant(session, tenant_name).id
        self.base = new_id("job")[:-4]
        self.count = 0

    def batch(self, priority: str, status: BatchStatus = BatchStatus.running) -> str:
        with session_scope() as session:
            row = Batch(id=new_id("bat"), tenant_id=self.tenant_id, status=status, priority=_rank(priority))
            session.add(row)
        return row.id

    def job(self, name: str, priority: str = "normal", batch: str | None = None, line: int | None = None) -> str:
        self.count += 1
        with session_scope() as session:
            job = new_job_row(self.tenant_id, JobSpec(prompt=name, priority=priority), batch_id=batch, batch_line=line)
            job.id = f"{self.base}{self.count:04d}"
            session.add(job)
        return job.id


def _rank(priority: str) -> int:
    return {"high": 0, "normal": 1, "low": 2}[priority]


@pytest.fixture()
def queue(database: str, redis_url: str) -> Iterator[Queue]:
    with scheduler_held():  # a session-wide worker's scheduler starts none of them meanwhile
        made = Queue(f"qpos-{new_id('t')[-8:]}")
        yield made
    end_open_jobs(made.tenant_name)


def test_priority_first_then_batches_and_single_jobs_take_turns(queue: Queue) -> None:
    normal = queue.batch("normal")
    b = [queue.job(f"b{i}", batch=normal, line=i) for i in (1, 2, 3)]  # the oldest: a batch of three
    s = [queue.job(f"s{i}") for i in (1, 2)]  # then two single jobs
    low = queue.batch("low")
    lo = queue.job("lo", "low", batch=low, line=1)
    high = queue.batch("high")
    h = [queue.job(f"h{i}", "high", batch=high, line=i) for i in (1, 2)]  # the newest, but high
    expected = [h[0], h[1], b[0], s[0], b[1], s[1], b[2], lo]
    with session_scope() as session:
        got = queue_positions(session, queue.tenant_id, expected)
    assert [job for job, _ in sorted(got.items(), key=lambda kv: kv[1])] == expected
    assert sorted(got.values()) == list(range(1, len(expected) + 1))


def test_single_jobs_alone_go_by_priority_then_age(queue: Queue) -> None:
    old_low, normal, high, new_high = (
        queue.job("a", "low"), queue.job("b"), queue.job("c", "high"), queue.job("d", "high")
    )  # fmt: skip
    with session_scope() as session:
        got = queue_positions(session, queue.tenant_id, [old_low, normal, high, new_high])
    assert got == {high: 1, new_high: 2, normal: 3, old_low: 4}


def test_started_paused_and_other_tenants_jobs_have_no_place(queue: Queue) -> None:
    first, second = queue.job("first"), queue.job("second")
    paused = queue.batch("high", BatchStatus.paused)
    held = queue.job("held", "high", batch=paused, line=1)
    other = Queue(f"qpos-other-{new_id('t')[-8:]}")
    theirs = other.job("theirs", "high")
    try:
        with session_scope() as session:
            jobs = {j.id: j for j in session.exec(select(Job).where(Job.id.in_([first, second, held])))}
            assert queue_position(session, jobs[held]) is None, "its batch is paused: it is not in line"
            assert page_positions(session, jobs.values()) == {first: 1, second: 2}, "the paused job takes no place"
            jobs[first].stage, jobs[first].status = Stage.credential, JobStatus.starting
            session.add(jobs[first])
            session.flush()
            assert queue_position(session, jobs[first]) is None, "started: no position"
            assert queue_position(session, jobs[second]) == 1
            assert queue_positions(session, other.tenant_id, [theirs]) == {theirs: 1}
    finally:
        end_open_jobs(other.tenant_name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_jobs_position_agrees_with_the_ranking_of_the_whole_queue(queue: Queue, seed: int) -> None:
    """`queue_position` (one job: an aggregate per flow) against `queue_positions` (every waiting job ranked),
    on a random mix of batches and single jobs of mixed priorities, a paused batch and a started job."""
    import random

    rng = random.Random(seed)
    levels = ("high", "normal", "low")
    batches = [queue.batch(rng.choice(levels)) for _ in range(4)]
    paused = queue.batch("normal", BatchStatus.paused)
    lines = dict.fromkeys([*batches, paused], 0)
    ids = []
    for i in range(40):
        flow = rng.choice([None, None, *batches, paused])
        if flow is not None:
            lines[flow] += 1
        ids.append(queue.job(f"j{i}", rng.choice(levels), batch=flow, line=lines[flow] if flow else None))
    with session_scope() as session:
        started = session.get(Job, ids[7])
        started.stage, started.status = Stage.session, JobStatus.processing
        session.add(started)
    with session_scope() as session:
        ranked = queue_positions(session, queue.tenant_id, ids)
        one_by_one = {}
        for job_id in ids:
            place = queue_position(session, session.get(Job, job_id))
            if place is not None:
                one_by_one[job_id] = place
    assert one_by_one == ranked
    assert sorted(ranked.values()) == list(range(1, len(ranked) + 1))
    assert ids[7] not in ranked and len(ranked) < len(ids)  # the started job, the paused batch's jobs

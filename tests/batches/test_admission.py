"""Admission by the scheduler (never more than `max_in_flight` of a batch's jobs in flight, oldest line first),
completion (one `batch.completed`, whatever races), the sweeper's catch-up, and cancel. Jobs are ended and
admitted by hand here, the scheduler's lease held by the test (`scheduler_held`); the end-to-end file runs them
through the real worker and simulator."""

from __future__ import annotations

import threading

import pytest

from shared.domain import batches
from shared.tables import Batch
from tests.batches.helpers import (
    admit_now,
    batch_events,
    csv_of,
    finish,
    in_flight,
    jobs_of,
    keep_off_sweeper,
    post_batch,
    recording,
    scheduler_held,
)


@pytest.fixture(autouse=True)
def _held():
    with scheduler_held():
        yield


def run_hooks(job_id: str, batch_id: str) -> None:
    """What follows a job's end for its batch (shared/domain/job_end.py)."""
    batches.settle(batch_id)


def test_first_jobs_are_admitted_in_line_order_and_dispatched(api, tenant) -> None:
    rows = [f"Clip {i},e{i}" for i in range(7)]
    with recording() as recorder:
        resp = post_batch(api, tenant, csv_of(rows), max_in_flight="3")
        assert resp.status_code == 201, resp.text
        batch = resp.json()
        assert batch["status"] == "queued" and in_flight(batch["id"]) == []
        assert admit_now() == 3
    keep_off_sweeper(batch["id"])
    view = api.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).json()
    assert view["status"] == "running"
    assert in_flight(batch["id"]) == [2, 3, 4]
    jobs = jobs_of(batch["id"])
    admitted = {j.id for j in jobs if j.stage != "queued"}
    assert {job_id for job_id, _, _ in recorder.jobs} == admitted
    assert all(seq == 0 and stage == "credential" for _, seq, stage in recorder.jobs)
    assert all(j.stage == "queued" and j.lease_until is None for j in jobs if j.id not in admitted)


def test_each_job_end_admits_the_next_and_the_batch_completes_once(api, tenant) -> None:
    with recording() as recorder:
        batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(6)]), max_in_flight="2").json()
        seen_in_flight = []
        while True:
            admit_now()
            keep_off_sweeper(batch["id"])
            flying = in_flight(batch["id"])
            seen_in_flight.append(len(flying))
            if not flying:
                break
            first = next(j for j in jobs_of(batch["id"]) if j.batch_line == flying[0])
            finish([first.id], "failed" if first.batch_line == 3 else "succeeded")
            run_hooks(first.id, batch["id"])
    assert max(seen_in_flight) == 2
    assert len(recorder.jobs) == 6  # every job dispatched exactly once
    events = batch_events(batch["id"])
    assert len(events) == 1
    data = events[0].data
    assert data["status"] == "completed" and data["counts"]["succeeded"] == 5 and data["counts"]["failed"] == 1
    view = api.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).json()
    assert view["status"] == "completed" and view["completed_at"] is not None


def test_completion_races_write_one_event(api, tenant) -> None:
    with recording():
        batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(4)])).json()
    finish([j.id for j in jobs_of(batch["id"])])
    threads = [threading.Thread(target=batches.settle, args=(batch["id"],)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches.sweep_batches()
    assert len(batch_events(batch["id"])) == 1


def test_the_sweeper_settles_a_batch_whose_hook_was_lost(api, tenant) -> None:
    with recording() as recorder:
        batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(3)]), max_in_flight="1").json()
        admit_now()
        keep_off_sweeper(batch["id"])
        finish([jobs_of(batch["id"])[0].id])  # no hook ran
        assert in_flight(batch["id"]) == []
        admit_now()  # the next line starts as soon as the first ended, hook or not
        keep_off_sweeper(batch["id"])
        assert in_flight(batch["id"]) == [3]
        finish([j.id for j in jobs_of(batch["id"])[1:]])  # no hook ran: the batch would stay open
        assert batch_events(batch["id"]) == []
        batches.sweep_batches()  # settles it (unless the session's own sweeper just did: either way, once)
    assert len(recorder.jobs) == 2  # line 4 ended before it was admitted: never dispatched
    assert len(batch_events(batch["id"])) == 1


def test_cancel_stops_queued_jobs_at_once_and_completes_once(api, tenant) -> None:
    with recording():
        batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(5)]), max_in_flight="2").json()
    keep_off_sweeper(batch["id"])
    resp = api.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "canceled"
    assert view["counts"]["canceled"] == 5 and view["completed_at"] is not None
    again = api.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers).json()
    assert again["status"] == "canceled"
    events = batch_events(batch["id"])
    assert len(events) == 1 and events[0].data["status"] == "canceled"
    assert {j.error_code for j in jobs_of(batch["id"])} == {"canceled"}


def test_cancel_waits_for_a_running_job(api, tenant) -> None:
    from datetime import timedelta

    from shared.db import session_scope
    from shared.timeutil import utcnow

    with recording():
        batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(4)]), max_in_flight="2").json()
    running = jobs_of(batch["id"])[0]
    with session_scope() as session:  # a worker holds this job's step right now
        job = session.get(type(running), running.id)
        job.status, job.lease_owner, job.lease_until = "processing", "w1", utcnow() + timedelta(hours=1)
        session.add(job)
    view = api.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers).json()
    assert view["status"] == "canceled"
    assert view["counts"] == {**view["counts"], "processing": 1, "canceled": 3}
    assert batch_events(batch["id"]) == []
    flagged = jobs_of(batch["id"])[0]
    assert flagged.cancel_requested and flagged.status == "processing"
    finish([running.id], "canceled")  # the worker finishes the cancel, then its hook runs
    run_hooks(running.id, batch["id"])
    events = batch_events(batch["id"])
    assert len(events) == 1 and events[0].data["counts"]["canceled"] == 4


def test_admission_ignores_finished_and_paused_batches(api, tenant) -> None:
    from shared.db import session_scope

    with recording() as recorder:
        done = post_batch(api, tenant, csv_of(["Clip,e1"])).json()
        api.post(f"/v1/batches/{done['id']}/cancel", headers=tenant.headers)
        paused = post_batch(api, tenant, csv_of(["Clip,e1", "Clip,e2"])).json()
        with session_scope() as session:
            row = session.get(Batch, paused["id"])
            row.status = "paused"
            session.add(row)
        admit_now()
    assert recorder.jobs == [] and in_flight(paused["id"]) == []

"""Batches on the whole stack: a real worker process, beat (the sweeper), the simulator over HTTP, and a webhook
receiver that verifies signatures with the `standardwebhooks` package."""

from __future__ import annotations

import csv
import io
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from shared.db import session_scope
from shared.domain import batches
from shared.domain.credit_admission import committed
from shared.tables import Job
from tests.batches.helpers import KLING, batch_events, csv_of, jobs_of, post_batch
from tests.utils import stack
from tests.utils.stack import give_credits
from tests.utils.waiting import wait_while_progressing

pytestmark = pytest.mark.slow
OPEN = ("queued", "starting", "processing")


def wait_batch(api: Any, tenant: Any, batch_id: str, stall: float = 60.0) -> dict[str, Any]:
    """The ended batch; fails when its counts stood still for ``stall`` seconds (a slow machine is not a stall)."""
    last: dict[str, Any] = {}

    def view() -> dict[str, Any]:
        last.update(api.get(f"/v1/batches/{batch_id}", headers=tenant.headers).json())
        return last

    def ended() -> dict[str, Any] | None:
        batch = view()
        return dict(batch) if batch["status"] in ("completed", "canceled") and batch["completed_at"] else None

    return wait_while_progressing(ended, lambda: dict(last.get("counts", {})), stall=stall, what=f"batch {batch_id}")


def results(api: Any, tenant: Any, batch: dict[str, Any]) -> list[list[str]]:
    resp = api.get(f"/v1/batches/{batch['id']}/results.csv", headers=tenant.headers)
    assert resp.status_code == 200
    return list(csv.reader(io.StringIO(resp.text)))


@pytest.fixture()
def credits(stack_ready, tenant, sim):
    """Enough upstream credits for the test's jobs (an anonymous token starts with 100, ten jobs' worth)."""
    give_credits(stack_ready, tenant, sim, 1_000_000)
    return lambda available: give_credits(stack_ready, tenant, sim, available)


def in_flight_count(batch_id: str) -> int:
    with session_scope() as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(Job)
                .where(Job.batch_id == batch_id, Job.stage != "queued", Job.status.in_(OPEN))
            ).one()
        )


def started_count(batch_id: str) -> int:
    with session_scope() as session:
        return int(
            session.exec(
                select(func.count()).select_from(Job).where(Job.batch_id == batch_id, Job.started_at.is_not(None))
            ).one()
        )


@pytest.mark.heavy  # never beside another heavy test (tests/utils/heavy.py)
@pytest.mark.timeout(1200)  # it fails sooner if the batch stops moving (wait_batch)
def test_a_thousand_rows_end_to_end_with_results_line_by_line(stack_ready, tenant, credits) -> None:
    api = stack_ready
    lines = ["prompt,profile,external_id,quality,meta_row"]
    expected: list[tuple[int, str, str]] = []  # (physical line, external_id, status)
    line = 1
    for i in range(1003):
        if i % 250 == 7:  # a few bad rows, skipped
            lines.append(f",{KLING},row-{i},high,{i}")
            line += 1
            expected.append((line, f"row-{i}", "skipped"))
        elif i % 100 == 3:  # a prompt with a quoted newline takes two physical lines
            lines.append(f'"Scene {i}:\nA lighthouse at dusk",{KLING},row-{i},low,{i}')
            line += 1
            expected.append((line, f"row-{i}", "succeeded"))
            line += 1
        else:
            lines.append(f"A fox number {i} in the snow,{KLING},row-{i},,{i}")
            line += 1
            expected.append((line, f"row-{i}", "succeeded"))
    data = ("\n".join(lines) + "\n").encode()
    resp = post_batch(api, tenant, data, on_error="skip", max_in_flight="50")
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert (batch["total"], batch["skipped"]) == (1003, 4)
    done = wait_batch(api, tenant, batch["id"])
    assert done["status"] == "completed"
    assert done["counts"]["succeeded"] == 999 and done["counts"]["failed"] == 0, done["counts"]
    rows = results(api, tenant, done)
    assert rows[0] == ["line", "external_id", "status", "output_url", "error", "artifact_url", "artifact_sha256"]
    assert len(rows) == 1 + 1003
    for (want_line, want_id, want_status), row in zip(expected, rows[1:], strict=True):
        got_line, got_id, status, output_url, error = row[:5]
        assert (int(got_line), got_id, status) == (want_line, want_id, want_status), row
        if status == "succeeded":
            assert output_url.startswith(stack.test_env()["REELMILL_NEMO_BASE_URL"] + "/"), row
            assert error == "", row
        else:
            assert output_url == "" and error == "prompt: must not be blank", row
    urls = [r[3] for r in rows[1:] if r[2] == "succeeded"]
    assert len(set(urls)) == len(urls)  # every job its own video
    assert len(batch_events(batch["id"])) == 1


def test_max_in_flight_is_never_exceeded(stack_ready, tenant, credits) -> None:
    api = stack_ready
    batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(40)]), max_in_flight="3").json()
    samples: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        samples.append(in_flight_count(batch["id"]))
        view = api.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).json()
        if view["completed_at"]:
            break
        time.sleep(0.03)
    assert view["counts"]["succeeded"] == 40
    assert max(samples) == 3, samples  # reached, never passed
    assert len(samples) > 20
    started = sorted((j.started_at, j.batch_line) for j in jobs_of(batch["id"]))
    # The first three are admitted together and race each other to start; they must be the oldest lines.
    assert {line for _, line in started[:3]} == {2, 3, 4}


def test_a_single_job_starts_while_a_big_batch_runs(stack_ready, tenant, credits) -> None:
    """The batch keeps at most `max_in_flight` of its steps in the queues, so a job sent meanwhile is not stuck
    behind the batch's hundreds of rows: it starts while most of the batch has not."""
    api = stack_ready
    batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(400)]), max_in_flight="20").json()
    while started_count(batch["id"]) < 10:  # the batch is busy: its jobs hold the worker
        time.sleep(0.05)
    sent = time.monotonic()
    job = api.post("/v1/jobs", headers=tenant.headers, json={"prompt": "A single clip"}).json()
    job = stack.wait_job(api, tenant, job["id"], timeout=120, until=lambda j: j["status"] != "queued")
    waited = time.monotonic() - sent
    with session_scope() as session:
        single = session.get(Job, job["id"])
    later = 400 - started_count(batch["id"])
    print(f"single job started {waited:.2f}s after it was sent; {later} of 400 batch jobs had not started")
    state = f"waited {waited:.2f}s, job {job['status']}/{job.get('error')}, {later} of 400 not started"
    assert single is not None and single.started_at is not None, state
    assert later >= 200, state
    api.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers)
    wait_batch(api, tenant, batch["id"])


def test_batch_completed_is_sent_exactly_once(stack_ready, tenant, credits) -> None:
    from tests.webhooks.receiver import Receiver

    api = stack_ready
    secret = api.get("/v1/webhooks/secret", headers=tenant.headers).json()["secret"]
    rx = Receiver(secrets=[secret]).start()
    try:
        data = csv_of([f"Clip {i},e{i}" for i in range(6)])
        batch = post_batch(api, tenant, data, webhook=rx.url("/hook"), webhook_events_filter="completed").json()
        rx.wait_for(lambda r: any(q.payload["type"] == "batch.completed" for q in r.received("/hook")), timeout=120)
        hammer = [threading.Thread(target=batches.settle, args=(batch["id"],)) for _ in range(6)]
        for thread in hammer:
            thread.start()
        for thread in hammer:
            thread.join()
        batches.sweep_batches()
        time.sleep(3)  # a few sweeper rounds (every second in tests) get their chance to send it again
        received = [q for q in rx.received("/hook") if q.payload["type"] == "batch.completed"]
        assert len(received) == 1
        assert received[0].verified_with == [0]
        payload = received[0].payload["data"]
        assert payload["id"] == batch["id"] and payload["status"] == "completed"
        assert payload["counts"]["succeeded"] == 6
        job_events = [q for q in rx.received("/hook") if q.payload["type"] == "job.succeeded"]
        assert len({q.webhook_id for q in job_events}) == 6
        assert len(batch_events(batch["id"])) == 1
    finally:
        rx.stop()


def test_a_batch_that_cannot_be_paid_for_is_refused(stack_ready, tenant, credits) -> None:
    credits(25)
    api = stack_ready
    resp = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(5)]))
    assert resp.status_code == 402, resp.text
    error = resp.json()["error"]
    assert error["code"] == "insufficient_credits"
    assert error["details"] == {"needed": 50}  # the shared balance is not shown to tenants by default
    assert error["message"].startswith("this batch of 5 jobs needs about 50 credits")
    assert api.get("/v1/jobs", headers=tenant.headers).json()["data"] == []
    with session_scope() as session:
        reserved = committed(session)  # other open work, if any (any tenant's: they share the balance)
    credits(50 + reserved)
    assert post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(5)])).status_code == 201

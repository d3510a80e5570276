"""`GET /v1/batches` (order, pages, status filter, tenants) and `POST /v1/batches/{id}/retry` (what it copies, the
link both ways, a second request, 404/409/402), over HTTP to the in-process API. Rows are ended by hand here, the
scheduler's lease held by the test; test_retry_end_to_end.py runs a retry through the real worker and simulator."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update
from sqlmodel import select

from shared.db import session_scope
from shared.domain import batches
from shared.tables import Batch, Job
from tests.batches.helpers import csv_of, finish, jobs_of, post_batch, recording, scheduler_held
from tests.utils import stack
from tests.utils.stack import give_credits


@pytest.fixture(autouse=True)
def _held(api, tenant, sim):
    give_credits(api, tenant, sim, 1_000_000)  # credit admission reads the balance an earlier test may have left low
    with scheduler_held(), recording():
        yield


def new_batch(api, tenant, rows: int = 2, **fields: str) -> dict:
    resp = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(rows)]), **fields)
    assert resp.status_code == 201, resp.text
    return resp.json()


def ended(batch_id: str, statuses: list[str]) -> list[Job]:
    """End the batch's jobs (in line order) with ``statuses``, then settle it as the job-end hook would."""
    jobs = jobs_of(batch_id)
    for job, status in zip(jobs, statuses, strict=True):
        finish([job.id], status)
    assert batches.settle(batch_id) == 1
    return jobs_of(batch_id)


def listed(api, tenant, **params) -> dict:
    resp = api.get("/v1/batches", headers=tenant.headers, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


# ---- list ------------------------------------------------------------------------------------------------


def test_list_is_newest_first_across_pages_and_items_are_the_batch_object(api, tenant) -> None:
    made = [new_batch(api, tenant)["id"] for _ in range(5)]
    seen: list[str] = []
    pages = []
    cursor = None
    while True:
        page = listed(api, tenant, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append(len(page["data"]))
        seen += [b["id"] for b in page["data"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [2, 2, 1]
    assert seen == made[::-1]
    first = listed(api, tenant, limit=1)["data"][0]
    assert first == api.get(f"/v1/batches/{made[-1]}", headers=tenant.headers).json()
    assert first["counts"]["queued"] == 2 and (first["retry_of"], first["retried_by"]) == (None, None)


def test_list_filters_by_status_and_refuses_an_unknown_one(api, tenant) -> None:
    running = new_batch(api, tenant)["id"]
    canceled = new_batch(api, tenant)["id"]
    assert api.post(f"/v1/batches/{canceled}/cancel", headers=tenant.headers).status_code == 200
    assert [b["id"] for b in listed(api, tenant, status="canceled")["data"]] == [canceled]
    assert [b["id"] for b in listed(api, tenant, status="queued")["data"]] == [running]
    assert [b["id"] for b in listed(api, tenant, status="queued,canceled")["data"]] == [canceled, running]
    assert listed(api, tenant, status="completed")["data"] == []
    for params in ({"status": "finished"}, {"cursor": "not-a-cursor"}, {"limit": "0"}):
        resp = api.get("/v1/batches", headers=tenant.headers, params=params)
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["field"] == next(iter(params)), error
    assert (
        "'finished' is not one of queued, running, paused, completed, canceled"
        in api.get("/v1/batches", headers=tenant.headers, params={"status": "finished"}).json()["error"]["message"]
    )


def test_another_tenants_batches_never_show(api, tenant) -> None:
    mine = new_batch(api, tenant)["id"]
    other = stack.new_tenant()
    try:
        theirs = new_batch(api, other)["id"]
        assert [b["id"] for b in listed(api, tenant)["data"]] == [mine]
        assert [b["id"] for b in listed(api, other)["data"]] == [theirs]
        # a cursor naming the other tenant's batch pages through this tenant's own batches only
        assert theirs not in [b["id"] for b in listed(api, tenant, cursor=_cursor(theirs))["data"]]
        assert api.get(f"/v1/batches/{theirs}", headers=tenant.headers).status_code == 404
        assert api.post(f"/v1/batches/{theirs}/retry", headers=tenant.headers).status_code == 404
    finally:
        from tests.batches.helpers import end_open_jobs

        end_open_jobs(other.name)


def _cursor(batch_id: str) -> str:
    import base64

    return base64.urlsafe_b64encode(batch_id.encode()).decode().rstrip("=")


# ---- retry -----------------------------------------------------------------------------------------------


def test_retry_reruns_failed_and_canceled_rows_as_a_linked_batch(api, tenant) -> None:
    data = csv_of(
        ["A fox,e1,low,spring", "A cat,e2,high,summer", "A dog,e3,low,autumn", ",e4,high,winter", "A owl,e5,low,"],
        header="prompt,external_id,quality,meta_season",
    )
    resp = post_batch(api, tenant, data, on_error="skip", max_in_flight="3", priority="high", cancel_after="2h")
    assert resp.status_code == 201, resp.text
    original = resp.json()
    old = ended(original["id"], ["succeeded", "failed", "canceled", "succeeded"])  # lines 2, 3, 4, 6 (5 skipped)

    resp = api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    retry = resp.json()
    assert retry["id"] != original["id"] and retry["retry_of"] == original["id"]
    assert resp.headers["Location"] == retry["urls"]["get"]
    assert "Idempotent-Replayed" not in resp.headers
    assert (retry["status"], retry["total"], retry["skipped"], retry["max_in_flight"]) == ("queued", 2, 0, 3)
    assert retry["counts"]["queued"] == 2
    new = jobs_of(retry["id"])
    assert [(j.batch_line, j.external_id, j.prompt, j.output_quality, j.meta) for j in new] == [
        (3, "e2", "A cat", "high", {"season": "summer"}),
        (4, "e3", "A dog", "low", {"season": "autumn"}),
    ]
    assert all(j.status == "queued" and j.stage == "queued" and j.priority == 0 for j in new)
    assert all(j.deadline_at is not None for j in new)  # cancel_after counts again from the retry
    assert {j.id for j in new}.isdisjoint(j.id for j in old)

    after = api.get(f"/v1/batches/{original['id']}", headers=tenant.headers).json()
    assert after["retried_by"] == retry["id"]
    assert after["counts"] == original["counts"] | {"queued": 0, "succeeded": 2, "failed": 1, "canceled": 1}
    assert [j.status for j in jobs_of(original["id"])] == ["succeeded", "failed", "canceled", "succeeded"]

    rows = api.get(f"/v1/batches/{retry['id']}/results.csv", headers=tenant.headers).text.splitlines()
    assert [r.split(",")[:3] for r in rows[1:]] == [["3", "e2", "queued"], ["4", "e3", "queued"]]
    assert [b["id"] for b in listed(api, tenant)["data"]] == [retry["id"], original["id"]]


def test_a_second_retry_answers_the_first_one(api, tenant) -> None:
    original = new_batch(api, tenant, rows=3)
    ended(original["id"], ["failed", "failed", "succeeded"])
    first = api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers)
    again = api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    with session_scope() as session:
        assert len(list(session.exec(select(Batch.id).where(Batch.retry_of == original["id"])))) == 1
    assert len(jobs_of(first.json()["id"])) == 2


def test_two_retries_at_once_make_one_batch(api, tenant) -> None:
    original = new_batch(api, tenant, rows=2)
    ended(original["id"], ["failed", "canceled"])
    answers: list = []
    start = threading.Barrier(2)

    def post() -> None:
        start.wait()
        answers.append(api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    with session_scope() as session:
        retries = list(session.exec(select(Batch.id).where(Batch.retry_of == original["id"])))
    assert len(retries) == 1 and len(jobs_of(retries[0])) == 2


def test_a_retry_whose_rows_fail_again_is_retried_in_turn(api, tenant) -> None:
    original = new_batch(api, tenant, rows=2)
    ended(original["id"], ["failed", "succeeded"])
    retry = api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers).json()
    ended(retry["id"], ["failed"])
    resp = api.post(f"/v1/batches/{retry['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    second = resp.json()
    assert second["retry_of"] == retry["id"] and second["id"] != retry["id"]
    assert [(j.batch_line, j.external_id) for j in jobs_of(second["id"])] == [(2, "e0")]


def test_retry_refuses_a_batch_still_running_or_with_nothing_to_retry(api, tenant) -> None:
    running = new_batch(api, tenant)
    resp = api.post(f"/v1/batches/{running['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["message"] == (
        f"batch {running['id']} is still queued; retry it once every job has ended (or cancel it first)"
    )

    with session_scope() as session:
        session.exec(update(Batch).where(Batch.id == running["id"]).values(status="paused"))  # type: ignore[call-overload]
    resp = api.post(f"/v1/batches/{running['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 409 and "resume it" in resp.json()["error"]["message"]

    resp = post_batch(api, tenant, csv_of(["A fox,e1", ",e2"]), on_error="skip")
    all_good = resp.json()
    ended(all_good["id"], ["succeeded"])
    resp = api.post(f"/v1/batches/{all_good['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "conflict" and error["message"].startswith(
        f"batch {all_good['id']} has no failed or canceled rows to retry (1 succeeded; its 1 skipped rows"
    )
    for batch_id in (running["id"], all_good["id"]):
        assert api.get(f"/v1/batches/{batch_id}", headers=tenant.headers).json()["retried_by"] is None


def test_retry_of_a_canceled_batch_reruns_its_canceled_rows(api, tenant) -> None:
    batch = new_batch(api, tenant, rows=3)
    assert api.post(f"/v1/batches/{batch['id']}/cancel", headers=tenant.headers).json()["status"] == "canceled"
    resp = api.post(f"/v1/batches/{batch['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 201, resp.text
    assert [j.batch_line for j in jobs_of(resp.json()["id"])] == [2, 3, 4]


@pytest.mark.parametrize("batch_id", ["bat_00000000000000000000000000", "nope", "bat_" + "x" * 300])
def test_retry_of_an_unknown_batch_is_404(api, tenant, batch_id: str) -> None:
    resp = api.post(f"/v1/batches/{batch_id}/retry", headers=tenant.headers)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_retry_is_admitted_against_credits_like_a_submission(api, tenant, sim) -> None:
    give_credits(api, tenant, sim, 1_000_000)
    original = new_batch(api, tenant, rows=3)
    ended(original["id"], ["failed", "failed", "failed"])
    give_credits(api, tenant, sim, 0)
    resp = api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers)
    assert resp.status_code == 402, resp.text
    assert resp.json()["error"]["message"].startswith(f"retrying 3 rows of batch {original['id']} needs about")
    assert api.get(f"/v1/batches/{original['id']}", headers=tenant.headers).json()["retried_by"] is None
    give_credits(api, tenant, sim, 1_000_000)
    assert api.post(f"/v1/batches/{original['id']}/retry", headers=tenant.headers).status_code == 201

"""`/v1/batches` over HTTP (the in-process API): create, refuse, skip, read, list, results.csv, limits, tenants."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from shared.tables import Batch, BatchRowError, Job
from tests.batches.helpers import KLING, count_rows, csv_of, finish, jobs_of, keep_off_sweeper, post_batch, recording
from tests.utils import stack


@pytest.fixture(autouse=True)
def _no_dispatch() -> Iterator[None]:
    with recording():
        yield


def results_of(api, tenant, batch_id: str) -> list[list[str]]:
    resp = api.get(f"/v1/batches/{batch_id}/results.csv", headers=tenant.headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(resp.text)))


def test_create_returns_the_batch_object(api, tenant) -> None:
    data = csv_of(
        [f"A fox,{KLING},low,e1,spring", f"A cat,{KLING},,e2,"],
        header="prompt,profile,quality,external_id,meta_campaign",
    )
    # a loopback port nothing listens on: no delivery may ever leave this machine
    resp = post_batch(api, tenant, data, max_in_flight="5", webhook="http://127.0.0.1:9/hook")
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert batch["id"].startswith("bat_")
    assert resp.headers["Location"] == batch["urls"]["get"] == f"http://testserver/v1/batches/{batch['id']}"
    assert set(batch["urls"]) == {"get", "jobs", "results", "cancel", "resume", "retry"}
    assert (batch["total"], batch["skipped"], batch["max_in_flight"], batch["on_error"]) == (2, 0, 5, "reject")
    assert batch["counts"] == {"queued": 2, "starting": 0, "processing": 0, "succeeded": 0, "failed": 0, "canceled": 0}
    assert batch["status"] == "queued" and batch["completed_at"] is None and batch["created_at"].endswith("Z")
    assert batch["webhook"] == "http://127.0.0.1:9/hook"
    assert "row_errors" not in batch
    assert api.get(batch["urls"]["get"], headers=tenant.headers).json()["counts"] == batch["counts"]
    jobs = jobs_of(batch["id"])
    assert [(j.batch_line, j.external_id, j.output_quality, j.meta) for j in jobs] == [
        (2, "e1", "low", {"campaign": "spring"}),
        (3, "e2", "high", {}),
    ]
    assert all(j.webhook_url == "http://127.0.0.1:9/hook" and j.webhook_events == ["start", "completed"] for j in jobs)


def test_a_refused_file_creates_nothing_and_lists_every_error(api, tenant) -> None:
    data = csv_of(["A fox,e1", ",e2", "A dog,e1"])
    resp = post_batch(api, tenant, data)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "invalid" and error["field"] == "file"
    assert error["details"] == [
        {"line": 3, "column": "prompt", "message": "must not be blank"},
        {"line": 4, "column": "external_id", "message": "duplicate external_id 'e1' (first on line 2)"},
    ]
    assert error["message"].startswith("2 errors in 2 of 3 rows; nothing was created. First: line 3, column prompt")
    with_tenant = api.get("/v1/jobs", headers=tenant.headers).json()
    assert with_tenant["data"] == []


def test_a_bad_header_is_one_file_error(api, tenant) -> None:
    resp = post_batch(api, tenant, b"prompt,colour\nA fox,red\n")
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["message"].startswith("line 1: unknown column 'colour'")
    assert error["details"][0]["line"] == 1 and error["details"][0]["column"] is None


def test_skip_runs_the_good_rows_and_reports_the_bad(api, tenant) -> None:
    data = csv_of(
        ["A fox,e1,high", ",e2,high", "A cat,e3,ultra", "A dog,=cmd|' /C calc'!A0,low"], "prompt,external_id,quality"
    )
    resp = post_batch(api, tenant, data, on_error="skip")
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert (batch["total"], batch["skipped"], batch["counts"]["queued"]) == (4, 2, 2)
    assert batch["row_errors"] == [
        {"line": 3, "column": "prompt", "message": "must not be blank"},
        {"line": 4, "column": "quality", "message": "'ultra' is not allowed; use 'low', 'medium' or 'high'"},
    ]
    assert count_rows(BatchRowError, batch_id=batch["id"]) == 2
    rows = results_of(api, tenant, batch["id"])
    assert rows == [
        ["line", "external_id", "status", "output_url", "error", "artifact_url", "artifact_sha256"],
        ["2", "e1", "queued", "", "", "", ""],
        ["3", "e2", "skipped", "", "prompt: must not be blank", "", ""],
        ["4", "e3", "skipped", "", "quality: 'ultra' is not allowed; use 'low', 'medium' or 'high'", "", ""],
        ["5", "'=cmd|' /C calc'!A0", "queued", "", "", "", ""],
    ]


def test_skip_with_no_good_row_is_refused(api, tenant) -> None:
    resp = post_batch(api, tenant, csv_of([",e1", ",e2"]), on_error="skip")
    assert resp.status_code == 422
    assert "every row has errors" in resp.json()["error"]["message"]


def test_results_in_input_order_with_outputs_and_errors(api, tenant) -> None:
    batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(5)]), max_in_flight="5").json()
    keep_off_sweeper(batch["id"])
    jobs = jobs_of(batch["id"])
    finish([jobs[0].id, jobs[2].id], "succeeded", "https://cdn.example/v.mp4")
    finish([jobs[1].id], "failed")
    rows = results_of(api, tenant, batch["id"])
    assert rows[1:] == [
        ["2", "e0", "succeeded", "https://cdn.example/v.mp4", "", "", ""],  # no artifact row: empty cells
        ["3", "e1", "failed", "", "upstream_failed: -the render failed", "", ""],
        ["4", "e2", "succeeded", "https://cdn.example/v.mp4", "", "", ""],
        ["5", "e3", "queued", "", "", "", ""],
        ["6", "e4", "queued", "", "", "", ""],
    ]


def test_jobs_are_listed_in_input_order_with_pages(api, tenant) -> None:
    batch = post_batch(api, tenant, csv_of([f"Clip {i},e{i}" for i in range(5)])).json()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/batches/{batch['id']}/jobs", headers=tenant.headers, params=params).json()
        seen += [j["external_id"] for j in page["data"]]
        assert all(j["batch_id"] == batch["id"] for j in page["data"])
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert seen == [f"e{i}" for i in range(5)]
    queued = api.get(f"/v1/batches/{batch['id']}/jobs", headers=tenant.headers, params={"status": "succeeded"})
    assert queued.json()["data"] == []
    bad = api.get(f"/v1/batches/{batch['id']}/jobs", headers=tenant.headers, params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"on_error": "ignore"}, "on_error", "on_error must be one of reject, skip"),
        ({"max_in_flight": "0"}, "max_in_flight", "max_in_flight must be between 1 and 50"),
        ({"max_in_flight": "51"}, "max_in_flight", "max_in_flight must be between 1 and 50"),
        ({"max_in_flight": "many"}, "max_in_flight", "max_in_flight must be a whole number"),
        ({"webhook": "ftp://example.com/hook"}, "webhook", "webhook: scheme must be https or http, not 'ftp'"),
        (
            {"webhook_events_filter": "start,done"},
            "webhook_events_filter",
            "unknown event filter 'done'; choose from start, progress, completed, artifact",
        ),
        ({"colour": "red"}, "colour", "unknown form field 'colour'"),
    ],
)
def test_bad_form_fields(api, tenant, fields: dict[str, str], field: str, message: str) -> None:
    resp = post_batch(api, tenant, csv_of(["A fox,e1"]), **fields)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field
    assert resp.json()["error"]["message"] == message


def test_repeated_event_filters_add_up(api, tenant) -> None:
    resp = api.post(
        "/v1/batches",
        headers=tenant.headers,
        files=[
            ("webhook_events_filter", (None, "completed")),
            ("webhook_events_filter", (None, "progress")),
            ("file", ("jobs.csv", csv_of(["A fox,e1"]), "text/csv")),
        ],
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["webhook_events_filter"] == ["progress", "completed"]


def test_file_part_is_required_once(api, tenant) -> None:
    resp = api.post("/v1/batches", headers=tenant.headers, data={"on_error": "skip"}, files={"x": (None, "1")})
    assert resp.status_code == 422 and resp.json()["error"]["field"] in ("file", "x")
    two = api.post(
        "/v1/batches",
        headers=tenant.headers,
        files=[("file", ("a.csv", csv_of(["A"]), "text/csv")), ("file", ("b.csv", csv_of(["B"]), "text/csv"))],
    )
    assert two.status_code == 422 and two.json()["error"]["message"] == "send exactly one CSV file as the 'file' part"
    other = api.post("/v1/batches", headers=tenant.headers, files={"csv": ("a.csv", csv_of(["A"]), "text/csv")})
    assert other.status_code == 422 and other.json()["error"]["field"] == "csv"
    not_form = api.post("/v1/batches", headers=tenant.headers, content=b"prompt\nA\n")
    assert not_form.status_code == 422 and not_form.json()["error"]["field"] == "Content-Type"


@pytest.fixture()
def small_limits(settings_env) -> None:
    settings_env(REELMILL_BATCH_MAX_BYTES="2000", REELMILL_BATCH_MAX_ROWS="5")


def test_too_many_bytes_is_413(api, tenant, small_limits) -> None:
    data = csv_of([f"A fox number {i} in the snow,e{i}" for i in range(200)])
    resp = post_batch(api, tenant, data)
    assert resp.status_code == 413
    assert resp.json()["error"] == {
        "code": "too_large",
        "message": "the file is larger than the limit of 2000 bytes",
        "field": "file",
    }


def test_too_many_bytes_while_streaming_is_413(api, tenant, small_limits) -> None:
    """No Content-Length up front (a chunked upload): the limit is checked as the bytes arrive."""
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n' + b"prompt\n" + b"x\n" * 1500
    body += b"\r\n--b--\r\n"

    def chunks():
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    headers = {**tenant.headers, "Content-Type": "multipart/form-data; boundary=b"}
    resp = api.post("/v1/batches", headers=headers, content=chunks())
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "too_large"


def test_too_many_rows_is_413(api, tenant, small_limits) -> None:
    resp = post_batch(api, tenant, csv_of([f"A,e{i}" for i in range(6)]))
    assert resp.status_code == 413
    assert resp.json()["error"]["message"] == "the file has more than the limit of 5 rows"
    assert post_batch(api, tenant, csv_of([f"A,e{i}" for i in range(5)])).status_code == 201


def test_another_tenants_batch_is_not_found(api, tenant) -> None:
    batch = post_batch(api, tenant, csv_of(["A fox,e1"])).json()
    other = stack.new_tenant("other")
    for method, path in [
        ("GET", ""),
        ("GET", "/jobs"),
        ("GET", "/results.csv"),
        ("POST", "/cancel"),
    ]:
        resp = api.request(method, f"/v1/batches/{batch['id']}{path}", headers=other.headers)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"] == {"code": "not_found", "message": f"no batch {batch['id']!r}"}
    assert api.get(f"/v1/batches/{batch['id']}", headers=tenant.headers).status_code == 200


def test_without_a_key_is_401(api) -> None:
    resp = api.post("/v1/batches", files={"file": ("a.csv", csv_of(["A"]), "text/csv")})
    assert resp.status_code == 401


def test_nothing_is_written_for_a_refused_file(api, tenant) -> None:
    before = (count_rows(Batch), count_rows(Job))
    resp = post_batch(api, tenant, csv_of(["A fox,e1"] * 1 + [",e2"]))
    assert resp.status_code == 422
    assert (count_rows(Batch), count_rows(Job)) == before

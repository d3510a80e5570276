"""Inputs that used to answer 500, each sent to a real API process: every one is now a 4xx in the API's error
shape, naming the field. And RFC 2231 file names, which used to be dropped, are accepted and kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.rawhttp import request
from tests.api.served import ServedApi

FORM = "multipart/form-data; boundary=b"


@pytest.fixture()
def http(served: ServedApi, key: str) -> Iterator[httpx.Client]:
    with served.client(key, timeout=30) as client:
        yield client
        for job in client.get("/v1/jobs", params={"status": "queued"}).json()["data"]:
            client.post(f"/v1/jobs/{job['id']}/cancel")  # nothing left to count as reserved credits


def refused(resp: httpx.Response, field: str, *words: str, status: int = 422) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["field"] == field, error
    for word in words:
        assert word in error["message"], error
    return error


def part(headers: str, content: bytes) -> bytes:
    return b"--b\r\n" + headers.encode("latin-1") + b"\r\n\r\n" + content + b"\r\n"


def job_part(job: bytes = b'{"prompt": "a fox"}') -> bytes:
    return part('Content-Disposition: form-data; name="job"', job)


# ---- multipart -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches"])
@pytest.mark.parametrize(
    "body",
    [
        b'--b\r\nContent-Disposition form-data; name="job"\r\n\r\n{}\r\n--b--\r\n',  # a header without a colon
        b"--b\r\n\x00bad: x\r\n\r\n{}\r\n--b--\r\n",  # a NUL in a header name
        b"--x\r\n",  # not the boundary it announced
        b'--b\r\nContent-Disposition: form-data; name="job"\r\n\r\n{"prompt": "a fox"}',  # ends inside a part
    ],
)
def test_a_malformed_multipart_body_is_422(http: httpx.Client, path: str, body: bytes) -> None:
    refused(http.post(path, content=body, headers={"Content-Type": FORM}), "body", "multipart body")


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches"])
def test_a_file_name_with_a_nul_is_422(http: httpx.Client, path: str) -> None:
    field = "files" if path == "/v1/jobs" else "file"
    body = job_part() + part(f'Content-Disposition: form-data; name="{field}"; filename="a\x00b.jpg"', b"data")
    refused(http.post(path, content=body + b"--b--\r\n", headers={"Content-Type": FORM}), "files", "control character")


def test_an_rfc2231_file_name_is_accepted_and_kept(http: httpx.Client, tmp_path: Path) -> None:
    """`filename*=UTF-8''...` wins over a plain `filename` (RFC 6266) and is decoded; the file keeps that name on
    disk, which is the name the upstream shows in the timeline."""
    kling = b'{"prompt": "a fox", "profile": "free-kling-ai-video-generation"}'
    disposition = 'form-data; name="files"; filename="fallback.jpg"; filename*=UTF-8\'\'Caf%C3%A9%20lighthouse.jpg'
    body = job_part(kling) + part(f"Content-Disposition: {disposition}", b"\xff\xd8\xff" + b"j" * 100)
    resp = http.post("/v1/jobs", content=body + b"--b--\r\n", headers={"Content-Type": FORM})
    assert resp.status_code == 201, resp.text
    assert resp.json()["files"] == [{"filename": "Café lighthouse.jpg", "size": 103}]
    stored = stored_files(resp.json()["id"])
    assert [Path(f["path"]).name for f in stored] == ["Café lighthouse.jpg"]
    assert Path(stored[0]["path"]).read_bytes().startswith(b"\xff\xd8\xff")


def test_a_plain_file_name_keeps_the_clients_name(http: httpx.Client) -> None:
    files = [("files", ("lighthouse.jpg", b"\xff\xd8\xff" + b"j" * 10, "image/jpeg"))]
    data = {"job": json.dumps({"prompt": "a fox", "profile": "free-kling-ai-video-generation"})}
    resp = http.post("/v1/jobs", data=data, files=files)
    assert resp.status_code == 201, resp.text
    [stored] = stored_files(resp.json()["id"])
    assert Path(stored["path"]).name == "lighthouse.jpg"  # not tmpkp0k6qry-lighthouse.jpg


def stored_files(job_id: str) -> list[dict]:
    from sqlmodel import select

    from shared.db import session_scope
    from shared.tables import Job

    with session_scope() as session:
        return list(session.exec(select(Job.files).where(Job.id == job_id)).one())


# ---- headers ----------------------------------------------------------------------------------------------


@pytest.fixture()
def job_id(http: httpx.Client) -> str:
    resp = http.post("/v1/jobs", json={"prompt": "a fox at dusk"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.mark.parametrize("value", [b"\xb2", b"9" * 5000, str(2**64).encode(), b"-1", b"1.5", b"\xd9\xa3"])
def test_last_event_id_that_is_not_a_plain_number_is_422(served: ServedApi, key: str, job_id: str, value: bytes):
    headers = {"Authorization": f"Bearer {key}", "Last-Event-ID": value}
    answer = request(served.url, "GET", f"/v1/jobs/{job_id}/events", headers)
    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert error["field"] == "Last-Event-ID" and "at most 9 digits" in error["message"]


def test_last_event_id_past_the_jobs_events_is_422(http: httpx.Client, job_id: str) -> None:
    resp = http.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "999999999"})
    refused(resp, "Last-Event-ID", "not an event this stream sent")


@pytest.mark.parametrize("wait", ["9" * 5000, "1" + "0" * 30, "3"])
def test_prefer_wait_over_the_limit_is_422(http: httpx.Client, wait: str) -> None:
    resp = http.post("/v1/jobs", json={"prompt": "a fox"}, headers={"Prefer": f"wait={wait}"})
    error = refused(resp, "Prefer", "over the limit of 2 seconds")
    assert len(error["message"]) < 200


def test_an_idempotency_key_that_is_not_printable_ascii_is_422(served: ServedApi, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": b"k\xe9y", "Content-Type": "application/json"}
    answer = request(served.url, "POST", "/v1/jobs", headers, body=b'{"prompt": "a fox"}')
    assert answer.status == 422 and answer.json()["error"]["field"] == "Idempotency-Key"


# ---- JSON -------------------------------------------------------------------------------------------------

DEEP = b'{"prompt": "a fox", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
BIG_NUMBER = b'{"prompt": "a fox", "metadata": {"n": ' + b"9" * 5000 + b"}}"
SURROGATE = b'{"prompt": "a fox \\ud800 at dusk"}'


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body", "nested deeper than 32 levels"),
        (DEEP, "body", "nested deeper than 32 levels"),
        (BIG_NUMBER, "body", "more than 64 characters"),
        (b'{"prompt": "a fox", "metadata": {"n": 1e999}}', "body", "out of range"),
        (b'{"prompt": "a fox", "metadata": {"n": NaN}}', "body", "NaN is not a JSON value"),
        (SURROGATE, "prompt", "lone surrogate"),
        (b'{"prompt": "a fox", "metadata": {"\\udfff": 1}}', "metadata", "lone surrogate"),
        (b'{"prompt": "a fox", "steps": [{"text": "x\\ud800"}]}', "steps[0].text", "lone surrogate"),
        (b'{"prompt": "a fox", "metadata": {"k": ["", "\\u0000"]}}', "metadata.k[1]", "NUL character"),
        (b'{"prompt": "a \\u0000 fox"}', "prompt", "NUL character"),
        (b'{"prompt": "a fox", "language": "dd-mWdGCB2M-THFOMXPs-RXdvOHlk"}', "language", "at most 16 characters"),
    ],
)
def test_json_that_breaks_parsers_or_databases_is_422(http: httpx.Client, body: bytes, field: str, words: str):
    headers = {"Content-Type": "application/json"}
    refused(http.post("/v1/jobs", content=body, headers=headers), field, words)


@pytest.mark.parametrize(
    ("job", "field", "words"),
    [
        (b"[" * 60_000 + b"]" * 60_000, "job", "nested deeper"),
        (BIG_NUMBER, "job", "more than 64 characters"),
        (SURROGATE, "job.prompt", "lone surrogate"),
    ],
)
def test_the_multipart_job_field_is_held_to_the_same_rules(http: httpx.Client, job: bytes, field: str, words: str):
    resp = http.post("/v1/jobs", content=job_part(job) + b"--b--\r\n", headers={"Content-Type": FORM})
    refused(resp, field, words)


def test_a_follow_up_is_held_to_the_same_rules(http: httpx.Client, job_id: str) -> None:
    path = f"/v1/jobs/{job_id}/messages"
    headers = {"Content-Type": "application/json"}
    refused(http.post(path, content=b'{"text": "\\ud800"}', headers=headers), "text", "lone surrogate")
    refused(http.post(path, content=b"[" * 100_000, headers=headers), "body", "nested deeper")
    refused(http.post(path, content=b"{nope", headers=headers), "body", "not valid JSON")
    refused(http.post(path, json=["not", "an", "object"]), "body", "JSON object")


@pytest.mark.parametrize(
    "path",
    ["/v1/jobs/job_%00", "/v1/jobs/" + "x" * 5000, "/v1/batches/bat_%00/jobs", "/v1/jobs/job_%00/deliveries"],
)
def test_ids_that_no_database_could_hold_are_not_found(http: httpx.Client, path: str) -> None:
    resp = http.get(path)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/jobs", {"cursor": "am9iXwA"}, "cursor"),  # base64 of "job_\x00"
        ("/v1/jobs", {"batch_id": "bat_\x00"}, "batch_id"),
    ],
)
def test_query_values_that_no_database_could_hold_are_422(http: httpx.Client, path: str, params: dict, field: str):
    refused(http.get(path, params=params), field)

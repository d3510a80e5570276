"""The perimeter, attacked over real HTTP against a real API process: authentication before a single body byte is
read, one body limit per route class enforced before and while the body streams, the cap on form parts."""

from __future__ import annotations

import httpx
import pytest

from tests.api.rawhttp import request
from tests.api.served import ServedApi

GIGABYTE = str(1024**3)


def openapi(served: ServedApi) -> dict:
    return httpx.get(f"{served.url}/openapi.json", timeout=10).json()


def operations(served: ServedApi) -> list[tuple[str, str]]:
    """Every operation under /v1/ in the API's own OpenAPI document, with sample path parameters."""
    found = []
    for path, ops in openapi(served)["paths"].items():
        for method in ops:
            if path.startswith("/v1/"):
                concrete = path.replace("{job_id}", "job_01m8p4cwmhx3b0mq3pk0tzt4tq")
                concrete = concrete.replace("{batch_id}", "bat_01m8p4cwmhx3b0mq3pk0tzt4tq")
                found.append((method.upper(), concrete.replace("{delivery_id}", "dlv_01m8p4cwmhx3b0mq3pk0tzt4tq")))
    return found


@pytest.mark.parametrize("authorization", [None, "Bearer rm_live_not-a-key", "Basic dXNlcjpwdw=="])
def test_every_protected_operation_is_401_before_the_body_is_read(served: ServedApi, authorization) -> None:
    """The request declares a 1 GiB body and sends ten bytes of it: an answer can only come before reading it."""
    ops = operations(served)
    assert len(ops) >= 18
    answers = {}
    for method, path in ops:
        headers = {"Content-Type": "application/json", "Content-Length": GIGABYTE}
        if authorization:
            headers["Authorization"] = authorization
        try:
            answers[(method, path)] = request(served.url, method, path, headers, body=b'{"prompt"', timeout=10)
        except TimeoutError:
            answers[(method, path)] = None  # waited for the body it will never get
    assert {op: a.status if a else "no answer in 10 s" for op, a in answers.items()} == dict.fromkeys(answers, 401)
    for (method, _), answer in answers.items():
        if method != "HEAD":  # a HEAD answer has no body
            assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers.get("connection") == "close"
        assert b"rm_live_not-a-key" not in answer.body


def test_every_protected_operation_declares_the_key(served: ServedApi) -> None:
    for path, ops in openapi(served)["paths"].items():
        for method, op in ops.items():
            assert (op.get("security") == [{"ApiKey": []}]) is path.startswith("/v1/"), (method, path)


@pytest.mark.parametrize(
    ("path", "content_type", "declared", "message", "field"),
    [
        ("/v1/jobs", "application/json", 262145, "the request body is larger than the limit of 262144 bytes", "body"),
        ("/v1/jobs/job_01m8p4cwmhx3b0mq3pk0tzt4tq/messages", "application/json", 10**9, "262144 bytes", "body"),
        ("/v1/jobs", "multipart/form-data; boundary=b", 1048577, "limit of 1048576 bytes", "body"),
        ("/v1/batches", "multipart/form-data; boundary=b", 20000 + 65536 + 1, "limit of 20000 bytes", "file"),
    ],
)
def test_a_declared_body_over_its_class_limit_is_413_before_it_is_read(
    served: ServedApi, key: str, path: str, content_type: str, declared: int, message: str, field: str
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type, "Content-Length": str(declared)}
    answer = request(served.url, "POST", path, headers, body=b"--b\r\n", timeout=10)
    assert answer.status == 413, answer.body
    error = answer.json()["error"]
    assert error["code"] == "too_large" and message in error["message"] and error["field"] == field
    assert answer.headers.get("connection") == "close"


@pytest.mark.parametrize(
    ("path", "content_type", "message"),
    [
        ("/v1/jobs", "application/json", "limit of 262144 bytes"),
        ("/v1/jobs/job_01m8p4cwmhx3b0mq3pk0tzt4tq/messages", "application/json", "limit of 262144 bytes"),
        ("/v1/batches", "multipart/form-data; boundary=b", "limit of 20000 bytes"),
    ],
)
def test_a_chunked_body_is_counted_while_it_streams(served: ServedApi, key: str, path: str, content_type: str, message):
    """No Content-Length to refuse up front: the body is cut at the first byte over the limit."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    if path == "/v1/batches":
        first = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nprompt\n'
        chunks = [first] + [b"a fox in the snow\n" * 500] * 200  # 1.8 MB, if it were all read
    else:
        chunks = [b'{"prompt": "'] + [b"x" * 9000] * 200
    answer = request(served.url, "POST", path, headers, chunks=chunks, timeout=15)
    assert answer.status == 413, answer.body
    assert message in answer.json()["error"]["message"]


def test_the_number_of_form_parts_is_capped(served: ServedApi, key: str) -> None:
    parts = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="webhook_events_filter"\r\n\r\nstart\r\n' for _ in range(60)
    )
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=b"}
    answer = request(served.url, "POST", "/v1/batches", headers, body=parts + b"--b--\r\n")
    assert answer.status == 413
    assert answer.json()["error"] == {
        "code": "too_large",
        "message": "the form has more than the limit of 50 parts",
        "field": "body",
    }


def test_health_needs_no_key(served: ServedApi) -> None:
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{served.url}/openapi.json").status_code == 200

"""The OpenAPI document tells the truth about shapes: every response of every operation has a schema (or is a
bodiless status), every $ref resolves, errors are the one ErrorBody, streams and files carry their real content
types, protected operations declare the bearer scheme; and /docs renders from local assets only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from services.api.app import create_app

BODILESS = {"204", "302", "304", "416"}  # no body to describe: a redirect, not modified, an unsatisfiable range
METHODS = {"get", "head", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    yield TestClient(create_app())  # no lifespan: neither the document nor the docs touch a database


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_response_of_every_operation_has_a_schema(document: dict[str, Any]) -> None:
    missing = []
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content")
            if status in BODILESS and not content:
                continue
            if not content or any("schema" not in media for media in content.values()):
                missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
    assert len(list(operations(document))) >= 22


def test_no_ref_dangles(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert "#/components/schemas/JobSpec" in found and "#/components/schemas/MessageIn" in found
    for ref in found:
        resolve(document, ref)


def test_errors_are_the_one_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    body = document["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["error"]
    detail = resolve(document, body["properties"]["error"]["$ref"])
    assert detail["required"] == ["code", "message"] and {"field", "details"} <= set(detail["properties"])
    for path, method, operation in operations(document):
        if not path.startswith("/v1/"):
            continue
        responses = operation["responses"]
        assert {"401", "413"} <= set(responses), f"{method} {path}"
        for status, response in responses.items():
            if status.startswith(("4", "5")) and status != "416":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, f"{method} {path} {status}"


@pytest.mark.parametrize(
    ("path", "method", "status", "media"),
    [
        ("/v1/jobs/{job_id}/events", "get", "200", "text/event-stream"),
        ("/v1/batches/{batch_id}/results.csv", "get", "200", "text/csv"),
        ("/v1/jobs/{job_id}/output", "get", "200", "video/mp4"),
        ("/v1/jobs/{job_id}/output", "get", "206", "video/mp4"),
        ("/v1/jobs/{job_id}/output", "head", "200", "video/mp4"),
        ("/metrics", "get", "200", "text/plain"),
    ],
)
def test_streams_and_files_have_their_real_content_types(
    document: dict[str, Any], path: str, method: str, status: str, media: str
) -> None:
    assert list(document["paths"][path][method]["responses"][status]["content"]) == [media]


def test_typed_success_responses(document: dict[str, Any]) -> None:
    def schema_of(path: str, method: str, status: str) -> str:
        return document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]

    expected = {
        ("/v1/jobs", "post", "201"): "JobPublic",
        ("/v1/jobs", "get", "200"): "JobPage",
        ("/v1/jobs/{job_id}", "get", "200"): "JobPublic",
        ("/v1/jobs/{job_id}/cancel", "post", "202"): "JobPublic",
        ("/v1/jobs/{job_id}/revisions", "get", "200"): "RevisionPage",
        ("/v1/batches", "post", "201"): "BatchPublic",
        ("/v1/batches/{batch_id}", "get", "200"): "BatchPublic",
        ("/v1/batches/{batch_id}/jobs", "get", "200"): "BatchJobPage",
        ("/v1/jobs/{job_id}/deliveries", "get", "200"): "DeliveryPage",
        ("/v1/deliveries/{delivery_id}/redeliver", "post", "202"): "DeliveryPublic",
    }
    for (path, method, status), model in expected.items():
        assert schema_of(path, method, status) == f"#/components/schemas/{model}"
    page = document["components"]["schemas"]["JobPage"]
    assert {"data", "next_cursor", "has_more"} <= set(page["required"])


def test_protected_operations_declare_the_bearer_scheme(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    bearer = [name for name, scheme in schemes.items() if scheme == {**scheme, "type": "http", "scheme": "bearer"}]
    assert len(bearer) == 1
    for path, method, operation in operations(document):
        declared = operation.get("security")
        if path.startswith("/v1/"):
            assert declared == [{bearer[0]: []}], f"{method} {path}"
        else:
            assert not declared, f"{method} {path}"


def test_docs_render_from_local_assets_only(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text.lower()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", page.text)
    assert len(urls) >= 3, page.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # nothing from a CDN
        assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404  # no ReDoc (it would load from a CDN)


def test_the_ui_reads_the_same_document_as_openapi_3_0(client: TestClient, document: dict[str, Any]) -> None:
    ui = client.get("/docs/openapi.json").json()
    assert ui["openapi"].startswith("3.0.") and ui["paths"].keys() == document["paths"].keys()
    assert ui["components"]["securitySchemes"] == document["components"]["securitySchemes"]
    assert '{"type": "null"}' not in str(ui).replace("'", '"')
    output = ui["components"]["schemas"]["JobPublic"]["properties"]["output"]
    assert output["nullable"] is True
    validate(ui)

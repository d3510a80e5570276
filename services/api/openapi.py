"""The OpenAPI document's parts FastAPI cannot derive: the body schemas of routes that read their own bodies
(so that authentication and the size limits come first), the error shape, and the links between operations."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "details": {},
            },
        }
    },
}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or not a valid one", **_ERROR},
    404: {"description": "Not found (another tenant's resource is not found either)", **_ERROR},
    413: {"description": "A body or file over its limit (the message names it)", **_ERROR},
    422: {"description": "Invalid input (the message names the field)", **_ERROR},
}


def body_doc(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _link(operation_id: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


def job_links() -> dict[str, Any]:
    job = "$response.body#/id"
    return {
        "GetJob": _link("read_v1_jobs__job_id__get", job_id=job),
        "CancelJob": _link("cancel_v1_jobs__job_id__cancel_post", job_id=job),
        "PostMessage": _link("post_message_v1_jobs__job_id__messages_post", job_id=job),
        "ListRevisions": _link("revisions_v1_jobs__job_id__revisions_get", job_id=job),
        "Timeline": _link("timeline_v1_jobs__job_id__timeline_get", job_id=job),
        "Deliveries": _link("list_deliveries_v1_jobs__job_id__deliveries_get", job_id=job),
        "Events": _link("events_v1_jobs__job_id__events_get", job_id=job),
    }


def batch_links() -> dict[str, Any]:
    batch = "$response.body#/id"
    return {
        "GetBatch": _link("read_v1_batches__batch_id__get", batch_id=batch),
        "BatchJobs": _link("jobs_v1_batches__batch_id__jobs_get", batch_id=batch),
        "BatchResults": _link("results_v1_batches__batch_id__results_csv_get", batch_id=batch),
        "CancelBatch": _link("cancel_v1_batches__batch_id__cancel_post", batch_id=batch),
        "ResumeBatch": _link("resume_v1_batches__batch_id__resume_post", batch_id=batch),
    }


def delivery_links() -> dict[str, Any]:
    return {
        "Redeliver": _link(
            "redeliver_one_v1_deliveries__delivery_id__redeliver_post", delivery_id="$response.body#/data/0/id"
        )
    }


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in models:
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


def install(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Build the document once, with ``models`` (request bodies read by hand) and the error shape in it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(_schemas(models))
            components["Error"] = ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

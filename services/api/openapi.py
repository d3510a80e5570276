"""The OpenAPI document's parts FastAPI cannot derive: the body schemas of routes that read their own bodies
(so that authentication and the size limits come first) and the links between operations. The response models
and the error shape are in services/api/schemas/."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter

from services.api.schemas.errors import protected

# Kept for routes written against it: the common errors of a route under /v1/ that reads an id.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = protected(404, 422)


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
    """Build the document once, with ``models`` (request bodies read by hand) in it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(_schemas(models))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

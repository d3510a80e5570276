"""`/v1/batches`: submit a CSV of jobs, follow it, list its jobs, fetch its results, cancel it."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from services.api.deps import ReadSessionDep, SessionDep, TenantDep
from services.api.multipart import FormData, StreamingForm
from services.api.openapi import batch_links
from services.api.routes.jobs import job_page, parse_statuses
from services.api.schemas.batches import BatchJobPage, BatchPage, BatchPublic
from services.api.schemas.errors import protected
from shared.db import get_engine, read_session
from shared.domain import batch_list, batch_retry, batches, credit_admission
from shared.domain.batch_csv import RESULT_COLUMNS, safe_cell
from shared.domain.errors import TooLarge, ValidationFailed
from shared.settings import get_settings

router = APIRouter(prefix="/v1/batches", tags=["batches"])
log = logging.getLogger(__name__)

FIELDS = frozenset({"webhook", "webhook_events_filter", "on_error", "max_in_flight", "priority", "cancel_after"})

BATCH_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "the CSV (UTF-8, BOM allowed)",
                            "example": "prompt,external_id\na paper boat,row-1\na red kite,row-2\n",
                        },
                        "on_error": {"type": "string", "enum": ["reject", "skip"], "default": "reject"},
                        "max_in_flight": {"type": "integer", "minimum": 1},
                        "webhook": {"type": "string"},
                        "webhook_events_filter": {"type": "string", "description": "start,progress,completed"},
                        "priority": {"type": "string", "enum": ["high", "normal", "low"], "default": "normal"},
                        "cancel_after": {
                            "type": "string",
                            "description": "each job's deadline from now: 90, 90s, 15m, 2h or 1h30m",
                        },
                    },
                }
            }
        },
    }
}


def _file_limit(field: str, filename: str) -> int:
    if field != "file":
        raise ValidationFailed(f"unexpected file field {field!r}; send the CSV as the 'file' part", field=field)
    return get_settings().batch_max_bytes


async def _read_form(request: Request) -> FormData:
    """The form, its CSV on disk. (The perimeter already capped the whole body: the file plus 64 KiB.)"""
    limit = get_settings().batch_max_bytes
    try:
        form = await StreamingForm(get_settings().effective_uploads_dir / "batches", _file_limit).read(request)
    except TooLarge as exc:  # the form reader counts in MB; say the exact limit
        if exc.field != "file":
            raise
        raise TooLarge(f"the file is larger than the limit of {limit} bytes", field="file") from None
    try:
        unknown = sorted(set(form.fields) - FIELDS)
        if unknown:
            raise ValidationFailed(f"unknown form field {unknown[0]!r}", field=unknown[0])
        if len(form.files) != 1:
            raise ValidationFailed("send exactly one CSV file as the 'file' part", field="file")
    except BaseException:
        form.cleanup()
        raise
    return form


@router.post(
    "",
    status_code=201,
    openapi_extra=BATCH_BODY_DOC,
    summary="Submit a CSV of jobs",
    response_model_exclude_unset=True,  # `row_errors` only when rows were left out
    responses={**protected(402, 422), 201: {"description": "The batch", "links": batch_links()}},
)
async def create(request: Request, response: Response, tenant: TenantDep) -> BatchPublic:
    """Every row is checked before any job exists: a refused file answers 422 with every error as
    `{"line", "column", "message"}`; with `on_error=skip` good rows run and bad rows are reported."""
    form = await _read_form(request)
    try:
        view = await run_in_threadpool(_create, tenant.id, form)
    finally:
        form.cleanup()
    response.headers["Location"] = view["urls"]["get"]
    return BatchPublic.model_validate(view)


def _create(tenant_id: str, form: FormData) -> dict[str, Any]:
    fields = form.fields
    options = batches.parse_options(
        fields.get("on_error"),
        fields.get("max_in_flight"),
        fields.get("webhook"),
        form.values.get("webhook_events_filter"),  # repeated, or comma-separated, or both
        priority=fields.get("priority"),
        cancel_after=fields.get("cancel_after"),
    )
    credits = credit_admission.prefetch()  # before the transaction: see credit_admission.prefetch
    with Session(get_engine(), expire_on_commit=False) as session:
        made = batches.create_batch(session, tenant_id, form.files[0].path, options, credits)
        session.commit()
        view = batches.batch_public(session, made.batch)
    if made.scan.errors:
        view["row_errors"] = [e.public() for e in made.scan.errors]
    return view


@router.get(
    "/{batch_id}",
    summary="Get a batch: status and counts per job status",
    response_model_exclude_unset=True,
    responses=protected(404, 422),
)
def read(batch_id: str, tenant: TenantDep, session: ReadSessionDep) -> BatchPublic:
    return BatchPublic.model_validate(batches.batch_public(session, batches.get_batch(session, tenant.id, batch_id)))


@router.get(
    "/{batch_id}/jobs",
    summary="List a batch's jobs, in input order",
    response_model_exclude_unset=True,
    responses=protected(404, 422),
)
def jobs(
    batch_id: str,
    tenant: TenantDep,
    session: ReadSessionDep,
    status: Annotated[list[str] | None, Query(description="queued, starting, ...; repeat or comma-separate.")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BatchJobPage:
    batch = batches.get_batch(session, tenant.id, batch_id)
    rows, next_cursor = batches.list_batch_jobs(
        session, batch, status=parse_statuses(status), cursor=cursor, limit=limit
    )
    return BatchJobPage.model_validate(job_page(session, list(rows), next_cursor))


@router.get(
    "/{batch_id}/results.csv",
    summary="The batch's results: one line per input row, in input order",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "CSV: line, external_id, status, output_url, error, artifact_url, artifact_sha256",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **protected(404, 422),
    },
)
def results(batch_id: str, tenant: TenantDep, session: ReadSessionDep) -> StreamingResponse:
    batches.get_batch(session, tenant.id, batch_id)  # 404 before the stream starts
    session.close()  # the stream reads in a session of its own: one connection at a time
    headers = {"Content-Disposition": f'attachment; filename="{batch_id}-results.csv"'}
    return StreamingResponse(_results_csv(batch_id), media_type="text/csv; charset=utf-8", headers=headers)


def _results_csv(batch_id: str) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS)
    with read_session() as session:
        for count, row in enumerate(batches.result_rows(session, batch_id), start=1):
            writer.writerow([row[0], *(safe_cell(cell) for cell in row[1:])])
            if count % 500 == 0:
                yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


@router.post(
    "/{batch_id}/cancel",
    summary="Cancel a batch: queued jobs at once, running ones as they stop",
    response_model_exclude_unset=True,
    responses=protected(404, 422),
)
def cancel(batch_id: str, tenant: TenantDep) -> BatchPublic:
    batches.cancel_batch(tenant.id, batch_id)  # commits as it goes; each render in flight is canceled on its commit
    with read_session() as session:
        batch = batches.get_batch(session, tenant.id, batch_id)
        return BatchPublic.model_validate(batches.batch_public(session, batch))


@router.post(
    "/{batch_id}/resume",
    summary="Resume a batch paused for credits",
    response_model_exclude_unset=True,
    responses=protected(402, 404, 409, 422),
)
def resume(batch_id: str, tenant: TenantDep, session: SessionDep) -> BatchPublic:
    """A batch the upstream stopped with 2001 (out of credits) waits, paused; once credits are back, this continues
    it (402 while they are still short)."""
    credits = credit_admission.prefetch()  # before the session's transaction begins
    batch = batches.resume_batch(session, tenant.id, batch_id, credits)
    session.commit()
    batches.settle(batch.id)
    session.refresh(batch)
    return BatchPublic.model_validate(batches.batch_public(session, batch))


# ---- list and retry (shared/domain/batch_list.py, shared/domain/batch_retry.py) ---------------------------

RETRY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **protected(402, 404, 409, 422),
    200: {
        "model": BatchPublic,
        "description": "The batch had been retried already: its retry (header `Idempotent-Replayed: true`)",
    },
    201: {"description": "The new batch, `retry_of` this one", "links": batch_links()},
}


@router.get(
    "",
    summary="List the tenant's batches, newest first",
    response_model_exclude_unset=True,
    responses=protected(422),
)
def index(
    tenant: TenantDep,
    session: ReadSessionDep,
    status: Annotated[
        list[str] | None, Query(description="queued, running, paused, completed, canceled; repeat or comma-separate.")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BatchPage:
    """Each item is the batch object `GET /v1/batches/{id}` answers; `next_cursor` fetches the next page."""
    rows, next_cursor = batch_list.list_batches(
        session, tenant.id, status=batch_list.parse_batch_statuses(status), cursor=cursor, limit=limit
    )
    return BatchPage.model_validate(
        {"data": batch_list.batch_views(session, rows), "next_cursor": next_cursor, "has_more": next_cursor is not None}
    )


@router.post(
    "/{batch_id}/retry",
    status_code=201,
    summary="Retry a finished batch's failed and canceled rows, as a new batch linked to it",
    response_model_exclude_unset=True,
    responses=RETRY_RESPONSES,
)
def retry(batch_id: str, tenant: TenantDep, response: Response) -> BatchPublic:
    """The new batch re-runs each failed or canceled row with its `external_id` and line number, and the
    original's options; it is `retry_of` the original, which shows it as `retried_by`. A batch is retried once:
    asking again answers that same retry (200)."""
    credits = credit_admission.prefetch()  # before the transaction: see credit_admission.prefetch
    made = batch_retry.retry_batch(tenant.id, batch_id, credits)
    if not made.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    with read_session() as session:
        view = batches.batch_public(session, batches.get_batch(session, tenant.id, made.batch_id))
    response.headers["Location"] = view["urls"]["get"]
    return BatchPublic.model_validate(view)

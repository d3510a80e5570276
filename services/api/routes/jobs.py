"""`/v1/jobs`: create (JSON or multipart), read, list, cancel."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, select

from services.api.deps import ReadSessionDep, TenantDep
from services.api.job_intake import read_json_spec, read_multipart_spec
from services.api.multipart import FormData
from services.api.openapi import job_links
from services.api.schemas.errors import protected
from services.api.schemas.jobs import JobPage, JobPublic
from shared.artifacts.views import artifacts_for
from shared.db import get_engine, read_session
from shared.domain import credit_admission
from shared.domain.errors import ValidationFailed
from shared.domain.job_input import JobSpec
from shared.domain.jobs import cancel_job, create_job, get_job, list_jobs
from shared.domain.priority import cancel_after_s
from shared.domain.queue_position import page_positions
from shared.domain.views import created_public, job_public, load_public, turns_for
from shared.settings import get_settings
from shared.tables import Job, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
log = logging.getLogger(__name__)
PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait=([0-9]+)")
MAX_WAIT_DIGITS = 6  # more digits than this is over any limit, and is not turned into a number at all

JOB_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["job"],
                    "properties": {
                        "job": {"type": "string", "description": "the job as JSON (send it before the files)"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
        },
    }
}


def prefer_wait(prefer: str | None) -> int:
    if not prefer:
        return 0
    match = PREFER_WAIT.search(prefer)
    if not match:
        return 0
    digits = match.group(1)
    limit = get_settings().prefer_wait_max_s
    if len(digits) > MAX_WAIT_DIGITS or int(digits) > limit:
        shown = digits if len(digits) <= MAX_WAIT_DIGITS else digits[:MAX_WAIT_DIGITS] + "..."
        raise ValidationFailed(f"Prefer: wait={shown} is over the limit of {limit} seconds", field="Prefer")
    return int(digits)


@router.post(
    "",
    status_code=201,
    openapi_extra=JOB_BODY_DOC,
    summary="Create a job",
    response_model_exclude_unset=True,
    responses={**protected(402, 409, 422), 201: {"description": "The job", "links": job_links()}},
)
async def create(
    request: Request,
    response: Response,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    prefer: Annotated[str | None, Header()] = None,
    cancel_after: Annotated[str | None, Header(alias="Cancel-After", max_length=40)] = None,
) -> JobPublic:
    """Create a generation job. JSON body, or multipart with a `job` JSON field and `files` parts. `Cancel-After`
    (a duration: 90, 90s, 15m, 2h) cancels the job if it has not finished by then."""
    wait_s = prefer_wait(prefer)
    if idempotency_key is not None and not (idempotency_key.isascii() and idempotency_key.isprintable()):
        raise ValidationFailed("Idempotency-Key must be printable ASCII", field="Idempotency-Key")
    deadline_s = cancel_after_s(cancel_after)
    spec, form = await _read_body(request)
    files = [{"path": str(f.path), "filename": f.filename, "size": f.size} for f in form.files] if form else []

    def write() -> tuple[dict[str, Any], bool, bool]:
        credits = credit_admission.prefetch()  # before the transaction: see credit_admission.prefetch
        with Session(get_engine(), expire_on_commit=False) as session:
            if not _replays(session, tenant.id, idempotency_key):
                credit_admission.admit(session, {spec.profile: len(spec.turns())}, credits)
            made = create_job(
                session, tenant.id, spec, idempotency_key=idempotency_key, files=files, cancel_after_s=deadline_s
            )
            # read before the commit, in the same transaction: the view is what commits, and no second
            # transaction (nor its rollback) is begun to read it back
            if made.created:
                view = created_public(session, made.job, made.turns)
            else:
                view = load_public(session, made.job, position=True)
            session.commit()
            return view, made.created, JobStatus(made.job.status).terminal

    try:
        view, created, done = await run_in_threadpool(write)
    except BaseException:
        if form is not None:
            form.cleanup()
        raise
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
        if form is not None:
            form.cleanup()
    if wait_s and not done:
        view = await _wait_for_end(tenant.id, view["id"], wait_s)
        response.headers["Preference-Applied"] = f"wait={wait_s}"
    response.headers["Location"] = view["urls"]["get"]
    return JobPublic.model_validate(view)


async def _read_body(request: Request) -> tuple[JobSpec, FormData | None]:
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return await read_multipart_spec(request)
    return await read_json_spec(request), None


def _replays(session: Session, tenant_id: str, key: str | None) -> bool:
    """An Idempotency-Key seen before answers with the earlier job; it is not new work to pay for."""
    if key is None:
        return False
    found = session.exec(select(Job.id).where(Job.tenant_id == tenant_id, Job.idempotency_key == key)).first()
    return found is not None


async def _wait_for_end(tenant_id: str, job_id: str, wait_s: int) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        view = await run_in_threadpool(_read, tenant_id, job_id)
        if JobStatus(view["status"]).terminal or time.monotonic() >= deadline:
            return view
        await asyncio.sleep(min(0.5, max(0.05, deadline - time.monotonic())))


def _read(tenant_id: str, job_id: str) -> dict[str, Any]:
    with read_session() as session:
        return load_public(session, get_job(session, tenant_id, job_id), position=True)


@router.get(
    "/{job_id}",
    summary="Get a job (with its latest revisions; all of them at urls.revisions)",
    response_model_exclude_unset=True,
    responses=protected(404, 422),
)
def read(job_id: str, tenant: TenantDep, session: ReadSessionDep) -> JobPublic:
    return JobPublic.model_validate(load_public(session, get_job(session, tenant.id, job_id), position=True))


@router.get("", summary="List jobs, newest first", response_model_exclude_unset=True, responses=protected(422))
def index(
    tenant: TenantDep,
    session: ReadSessionDep,
    status: Annotated[list[str] | None, Query(description="queued, starting, ...; repeat or comma-separate.")] = None,
    batch_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    statuses = parse_statuses(status)
    jobs, next_cursor = list_jobs(
        session,
        tenant.id,
        status=statuses,
        batch_id=batch_id,
        created_after=created_after,
        created_before=created_before,
        cursor=cursor,
        limit=limit,
    )
    return JobPage.model_validate(job_page(session, jobs, next_cursor))


def job_page(session: Session, jobs: list[Job], next_cursor: str | None) -> dict[str, Any]:
    """A page of job views: their turns, artifacts and queue places read in one statement each."""
    turns = turns_for(session, [j.id for j in jobs])
    artifacts = artifacts_for(session, [j.id for j in jobs])
    places = page_positions(session, jobs)
    return {
        "data": [job_public(j, turns[j.id], artifacts[j.id], queue_position=places.get(j.id)) for j in jobs],
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
    }


def parse_statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
    known = [s.value for s in JobStatus]
    for value in wanted:
        if value not in known:
            raise ValidationFailed(f"status {value!r} is not one of {', '.join(known)}", field="status")
    return wanted


CANCEL_WAIT_S = 10


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job (and its upstream render)",
    response_model_exclude_unset=True,
    responses={**protected(404, 422), 202: {"model": JobPublic, "description": "The cancel is still under way"}},
)
async def cancel(job_id: str, response: Response, tenant: TenantDep) -> JobPublic:
    """A job between steps is canceled at once. A job whose step is running is flagged; its worker stops it (and
    cancels an upstream render in flight) within seconds. The reply waits for that, up to a few seconds: 200 with
    the canceled job, or 202 while the cancel is still under way."""

    def flag() -> None:  # an upstream render in flight is canceled once this commits (shared/domain/job_end.py)
        with Session(get_engine(), expire_on_commit=False) as session:
            cancel_job(session, tenant.id, job_id)
            session.commit()

    await run_in_threadpool(flag)
    view = await _wait_for_end(tenant.id, job_id, CANCEL_WAIT_S)
    if not JobStatus(view["status"]).terminal:
        response.status_code = 202
    return JobPublic.model_validate(view)

"""A job after creation: follow-up messages (revisions), its revisions page by page, its live event stream, its
timeline."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func
from sqlmodel import Session, select

from services.api.deps import ReadSessionDep, TenantDep
from services.api.job_intake import parse_model, read_json
from services.api.openapi import body_doc
from services.api.schemas.errors import protected
from services.api.schemas.jobs import JobPublic, RevisionPage, TimelinePublic, TrackPublic
from shared.db import get_engine, read_session
from shared.domain import credit_admission
from shared.domain.errors import Conflict, ValidationFailed
from shared.domain.job_input import check_asset_url
from shared.domain.jobs import get_job
from shared.domain.revisions import add_message
from shared.domain.views import list_revisions, load_public
from shared.nemo.draft import timeline_summary, tracks
from shared.nemo.errors import NemoError, SessionNotFound
from shared.nemo.intents import Intent, route_intent
from shared.nemo.wire import Credits
from shared.settings import get_settings
from shared.tables import Event, Job, JobStatus, JobTurn
from shared.webhooks.payload import payload_of

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
KEEPALIVE_S = 15.0
POLL_S = 0.5
PAGE = 500
EVENT_ID = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²" passes str.isdigit() and fails int()
# One Server-Sent Event as a stream's reader sees it (OpenAPI 3.1: a text/event-stream schema describes an event)
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "send it back as Last-Event-ID to resume"},
        "event": {"type": "string", "description": "the event type: job.started, job.progress, job.completed..."},
        "data": {"type": "string", "contentMediaType": "application/json", "description": "the webhook's payload"},
        "retry": {"type": "integer", "description": "milliseconds before reconnecting (with the first event)"},
    },
}


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "make the title card red"}]})

    text: str = Field(min_length=1)
    assets: list[str] = Field(default_factory=list)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if len(value) > get_settings().max_prompt_chars:
            raise ValueError(f"is longer than {get_settings().max_prompt_chars} characters")
        return value.strip()

    @field_validator("assets")
    @classmethod
    def _assets(cls, value: list[str]) -> list[str]:
        limit = get_settings().max_assets
        if len(value) > limit:
            raise ValueError(f"at most {limit} assets per message")
        return value


@router.post(
    "/{job_id}/messages",
    status_code=202,
    summary="Send a follow-up instruction (a new revision)",
    openapi_extra=body_doc("MessageIn"),
    response_model_exclude_unset=True,
    responses=protected(402, 404, 409, 422),
)
async def post_message(job_id: str, request: Request, tenant: TenantDep) -> JobPublic:
    """The job's limits apply: `max_assets` per message, `max_turns_per_job` turns in all, credit admission."""
    body = parse_model(MessageIn, await read_json(request))
    return JobPublic.model_validate(await run_in_threadpool(_add, tenant.id, job_id, body))


def _add(tenant_id: str, job_id: str, body: MessageIn) -> dict[str, Any]:
    credits = credit_admission.prefetch()  # before the transaction: see credit_admission.prefetch
    with Session(get_engine(), expire_on_commit=False) as session:
        job = get_job(session, tenant_id, job_id)
        for i, url in enumerate(body.assets):
            try:
                check_asset_url(url, job.profile)
            except ValueError as exc:
                raise ValidationFailed(f"assets[{i}]: {exc}", field=f"assets[{i}]") from None
        _admit(session, job, body, credits)
        job, _ = add_message(session, tenant_id, job_id, body.text, body.assets)
        session.commit()
        return load_public(session, job, position=True)


def _admit(session: Session, job: Job, body: MessageIn, credits: Credits | None) -> None:
    """Every message is admitted; one that only runs an action (status, credits, export, upload) costs nothing,
    and is refused only while accepted work already needs more than the balance holds."""
    sse = route_intent(body.text, has_files=bool(body.assets)) == Intent.SSE
    credit_admission.admit(session, {job.profile: 1 if sse else 0}, credits, what="this message")


@router.get(
    "/{job_id}/revisions",
    summary="A job's revisions in order, a page at a time",
    response_model_exclude_unset=True,
    responses=protected(404, 422),
)
def revisions(
    job_id: str,
    tenant: TenantDep,
    session: ReadSessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RevisionPage:
    job = get_job(session, tenant.id, job_id)
    data, next_cursor = list_revisions(session, job, cursor=cursor, limit=limit)
    return RevisionPage.model_validate({"data": data, "next_cursor": next_cursor, "has_more": next_cursor is not None})


# ---- live events -----------------------------------------------------------------------------------------
# Event ids are the job's own: 1 for its first event, 2 for the next... (the table's global sequence would tell
# a client how busy the whole platform is). Internally the stream follows the global sequence.


def _resume_point(job_id: str, sent: int) -> int:
    """The global sequence number of the job's ``sent``-th event (0 for none)."""
    if sent == 0:
        return 0
    with read_session() as session:
        seq = session.exec(
            select(Event.seq).where(Event.job_id == job_id).order_by(Event.seq).offset(sent - 1).limit(1)
        ).first()
        if seq is None:
            count = session.exec(select(func.count()).select_from(Event).where(Event.job_id == job_id)).one()
            raise ValidationFailed(
                f"Last-Event-ID {sent} is not an event this stream sent (the job has {count} events so far)",
                field="Last-Event-ID",
            )
    return int(seq)


def _events_after(job_id: str, after: int) -> tuple[list[Event], str]:
    with read_session() as session:
        rows = list(
            session.exec(select(Event).where(Event.job_id == job_id, Event.seq > after).order_by(Event.seq).limit(PAGE))
        )
        status = session.exec(select(Job.status).where(Job.id == job_id)).one()
    return rows, status


def _frame(event: Event, number: int) -> str:
    data = json.dumps(payload_of(event))  # the webhook's payload, so both carry the same timestamp form
    return f"id: {number}\nevent: {event.type}\ndata: {data}\n\n"


async def _stream(request: Request, job_id: str, sent: int, after: int) -> AsyncIterator[str]:
    """Until the job's last event was sent, the client goes, or `events_stream_max_s` passed (an EventSource
    reconnects by itself, with the Last-Event-ID it saw: no event is lost, and no connection is held forever)."""
    last_sent = time.monotonic()
    ends = last_sent + get_settings().events_stream_max_s
    retry = "retry: 2000\n"  # sent with the first event: a block without data is not an event for every client
    while not await request.is_disconnected() and time.monotonic() < ends:
        rows, status = await run_in_threadpool(_events_after, job_id, after)
        for event in rows:
            after = event.seq or after
            sent += 1
            yield retry + _frame(event, sent)
            retry = ""
            last_sent = time.monotonic()
        if not rows and JobStatus(status).terminal:
            return  # every event up to the end was sent
        if time.monotonic() - last_sent >= KEEPALIVE_S:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        if len(rows) < PAGE:
            await asyncio.sleep(POLL_S)


def last_event_number(value: str | None) -> int:
    if not value:
        return 0
    if not EVENT_ID.fullmatch(value.strip()):
        raise ValidationFailed(
            "Last-Event-ID must be the id of an event this stream sent (a number of at most 9 digits)",
            field="Last-Event-ID",
        )
    return int(value.strip())


@router.get(
    "/{job_id}/events",
    summary="The job's events as Server-Sent Events (resumable with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One event per job event, `id` numbering the job's events from 1",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **protected(404, 422),
    },
)
async def events(
    job_id: str,
    request: Request,
    tenant: TenantDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    sent = last_event_number(last_event_id)

    def start() -> int:
        with read_session() as session:
            get_job(session, tenant.id, job_id)
        return _resume_point(job_id, sent)

    after = await run_in_threadpool(start)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, job_id, sent, after), media_type="text/event-stream", headers=headers)


# ---- timeline --------------------------------------------------------------------------------------------


@router.get(
    "/{job_id}/timeline",
    summary="The draft's tracks and the one-line summary",
    responses=protected(404, 409, 422, 502),
)
async def timeline(job_id: str, tenant: TenantDep, refresh: bool = False) -> TimelinePublic:
    """The timeline as of the latest revision; `refresh=true` reads it from the upstream session now."""
    job, draft, revision = await run_in_threadpool(_latest_draft, tenant.id, job_id)
    if refresh:  # the database session is closed by now: the upstream call holds no connection
        draft = await run_in_threadpool(_live_draft, job)
    duration = (draft or {}).get("d")
    return TimelinePublic(
        job_id=job.id,
        revision=revision,
        summary=timeline_summary(draft) if draft else None,
        duration_ms=duration if isinstance(duration, int | float) and not isinstance(duration, bool) else None,
        tracks=[TrackPublic.model_validate(track) for track in tracks(draft)] if draft else [],
        refreshed=refresh,
    )


def _latest_draft(tenant_id: str, job_id: str) -> tuple[Job, dict[str, Any] | None, int | None]:
    with read_session() as session:
        job = get_job(session, tenant_id, job_id)
        turn = session.exec(
            select(JobTurn).where(JobTurn.job_id == job.id, JobTurn.draft.is_not(None)).order_by(JobTurn.seq.desc())
        ).first()
        session.expunge_all()
    return job, (turn.draft if turn else None), (turn.seq if turn else None)


def _live_draft(job: Job) -> dict[str, Any] | None:
    from shared.nemo.upstream import get_client

    if not job.session_id:
        raise Conflict("the job has no upstream session yet", field="refresh")
    try:
        return get_client().get_state(job.session_id, profile=job.profile).draft
    except SessionNotFound:
        raise Conflict("the upstream session has expired; its timeline is gone", field="refresh") from None
    except NemoError as exc:
        from shared.domain.errors import UpstreamUnavailableError

        raise UpstreamUnavailableError(f"NemoVideo did not answer: {exc.user_message}") from None

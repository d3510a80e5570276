"""A job after creation: follow-up messages (revisions), its live event stream, its timeline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, select

from services.api.deps import SessionDep, TenantDep
from shared.db import get_engine
from shared.domain.credit_admission import admit
from shared.domain.errors import Conflict, ValidationFailed
from shared.domain.job_input import check_asset_url
from shared.domain.jobs import get_job
from shared.domain.revisions import add_message
from shared.domain.views import load_public
from shared.nemo.draft import timeline_summary, tracks
from shared.nemo.errors import NemoError, SessionNotFound
from shared.nemo.intents import Intent, route_intent
from shared.settings import get_settings
from shared.tables import Event, Job, JobStatus, JobTurn
from shared.urlguard import ForbiddenUrl
from shared.webhooks.payload import payload_of

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
TERMINAL_EVENTS = frozenset({"job.succeeded", "job.failed", "job.canceled"})
KEEPALIVE_S = 15.0
POLL_S = 0.5


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


@router.post("/{job_id}/messages", status_code=202, summary="Send a follow-up instruction (a new revision)")
def post_message(job_id: str, body: MessageIn, tenant: TenantDep, session: SessionDep) -> dict[str, Any]:
    job = get_job(session, tenant.id, job_id)
    for i, url in enumerate(body.assets):
        try:
            check_asset_url(url, job.profile)
        except ForbiddenUrl as exc:
            raise ValidationFailed(f"assets[{i}]: {exc.reason}", field=f"assets[{i}]") from None
        except ValueError as exc:
            raise ValidationFailed(f"assets[{i}]: {exc}", field=f"assets[{i}]") from None
    if route_intent(body.text, has_files=bool(body.assets)) == Intent.SSE:
        admit(session, {job.profile: 1}, what="this message")
    job, _ = add_message(session, tenant.id, job_id, body.text, body.assets)
    session.commit()
    return load_public(session, job)


# ---- live events -----------------------------------------------------------------------------------------


def _events_after(job_id: str, after: int) -> tuple[list[Event], str]:
    with Session(get_engine(), expire_on_commit=False) as session:
        rows = list(
            session.exec(select(Event).where(Event.job_id == job_id, Event.seq > after).order_by(Event.seq).limit(500))
        )
        status = session.exec(select(Job.status).where(Job.id == job_id)).one()
    return rows, status


def _frame(event: Event) -> str:
    data = json.dumps(payload_of(event))  # the webhook's payload, so both carry the same timestamp form
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


async def _stream(request: Request, job_id: str, after: int) -> AsyncIterator[str]:
    last_sent = time.monotonic()
    retry = "retry: 2000\n"  # sent with the first event: a block without data is not an event for every client
    while not await request.is_disconnected():
        rows, status = await run_in_threadpool(_events_after, job_id, after)
        for event in rows:
            after = event.seq or after
            yield retry + _frame(event)
            retry = ""
            last_sent = time.monotonic()
        if not rows and JobStatus(status).terminal:
            return  # every event up to the end was sent
        if time.monotonic() - last_sent >= KEEPALIVE_S:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        if len(rows) < 500:
            await asyncio.sleep(POLL_S)


@router.get("/{job_id}/events", summary="The job's events as Server-Sent Events (resumable with Last-Event-ID)")
def events(
    job_id: str,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    get_job(session, tenant.id, job_id)
    after = 0
    if last_event_id:
        if not last_event_id.isdigit():
            raise ValidationFailed("Last-Event-ID must be an event id this stream sent", field="Last-Event-ID")
        after = int(last_event_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, job_id, after), media_type="text/event-stream", headers=headers)


# ---- timeline --------------------------------------------------------------------------------------------


@router.get("/{job_id}/timeline", summary="The draft's tracks and the one-line summary")
def timeline(job_id: str, tenant: TenantDep, session: SessionDep, refresh: bool = False) -> dict[str, Any]:
    """The timeline as of the latest revision; `refresh=true` reads it from the upstream session now."""
    job = get_job(session, tenant.id, job_id)
    turn = session.exec(
        select(JobTurn).where(JobTurn.job_id == job.id, JobTurn.draft.is_not(None)).order_by(JobTurn.seq.desc())
    ).first()
    draft, revision = (turn.draft, turn.seq) if turn else (None, None)
    if refresh:
        draft = _live_draft(job)
    return {
        "job_id": job.id,
        "revision": revision,
        "summary": timeline_summary(draft) if draft else None,
        "duration_ms": (draft or {}).get("d"),
        "tracks": tracks(draft) if draft else [],
        "refreshed": refresh,
    }


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

"""A job as the API shows it (shared/domain/views.py builds the view), its revisions, output and timeline."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from services.api.schemas.base import Page, Public, Timestamp
from shared.tables.artifact import ArtifactStatus
from shared.tables.enums import JobStatus, Stage, TurnStatus


class ArtifactPublic(Public):
    """The reelmill-held copy of a render (shared/artifacts/views.py); `url` is set once it is stored."""

    status: ArtifactStatus
    url: str | None = Field(description="GET it with your API key (`/v1/jobs/{id}/output?revision=N`)")
    sha256: str | None
    size: int | None
    content_type: str | None
    stored_at: Timestamp | None
    expires_at: Timestamp | None
    reason: str | None = Field(description="why it is not stored (failed, expired)")


class OutputPublic(Public):
    """A render's result. Keys the upstream did not give are absent."""

    url: str | None = Field(default=None, description="the upstream's video URL")
    duration: float | int | None = Field(default=None, description="seconds")
    size: int | None = Field(default=None, description="bytes")
    format: str | None = None
    render_id: str | None = None
    artifact: ArtifactPublic | None = Field(default=None, description="null when artifact mirroring is off")


class JobError(Public):
    code: str
    message: str


class FilePublic(Public):
    filename: str
    size: int


class JobUrls(Public):
    get: str
    cancel: str
    events: str
    messages: str
    timeline: str
    output: str
    revisions: str
    deliveries: str


class RevisionPublic(Public):
    """One turn of the job: a step given at creation (`kind: step`) or a follow-up message (`kind: revision`)."""

    index: int
    kind: str = Field(description="step or revision")
    instruction: str
    assets: list[str]
    status: TurnStatus
    messages: list[str] = Field(description="the agent's replies to this turn")
    timeline: str | None
    output: OutputPublic | None
    error: JobError | None
    suggested_job: dict[str, Any] | None = Field(description="a job to submit anew, after the session was lost")
    intent: str
    created_at: Timestamp
    completed_at: Timestamp | None


class JobPublic(Public):
    """The job: what `GET /v1/jobs/{id}` answers and webhooks carry as `data`. It holds its latest revisions
    (`revisions_total` says how many there are; `urls.revisions` pages through all)."""

    id: str
    status: JobStatus
    stage: Stage
    progress: int = Field(description="0-100, of the revision in flight")
    profile: str
    prompt: str
    language: str
    assets: list[str]
    files: list[FilePublic]
    output: OutputPublic | None
    messages: list[str]
    timeline: str | None
    error: JobError | None
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    metadata: dict[str, Any]
    batch_id: str | None
    external_id: str | None
    webhook: str | None
    webhook_events_filter: list[str]
    revisions: list[RevisionPublic]
    revisions_total: int
    urls: JobUrls
    queue_position: int | None = Field(
        default=None,
        description="while queued: 1-based place among the tenant's jobs waiting to start, in the scheduler's order",
    )


class JobPage(Page):
    data: list[JobPublic]


class RevisionPage(Page):
    data: list[RevisionPublic]


class SegmentPublic(Public):
    start_s: float | int
    end_s: float | int
    label: str | None
    volume: float | int | None
    text: str | None
    src: str | None


class TrackPublic(Public):
    index: int
    type: str = Field(description="video, audio, text or other")
    name: str
    segments: list[SegmentPublic]


class TimelinePublic(Public):
    job_id: str
    revision: int | None = Field(description="the revision the draft is from (null before any draft)")
    summary: str | None
    duration_ms: float | int | None
    tracks: list[TrackPublic]
    refreshed: bool

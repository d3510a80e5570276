"""A batch as the API shows it (shared/domain/batches.py `batch_public` builds the view)."""

from __future__ import annotations

from pydantic import Field

from services.api.schemas.base import Page, Public, Timestamp
from services.api.schemas.jobs import JobPublic
from shared.tables.enums import BatchStatus


class BatchCounts(Public):
    """How many of the batch's jobs are in each status."""

    queued: int
    starting: int
    processing: int
    succeeded: int
    failed: int
    canceled: int


class BatchUrls(Public):
    get: str
    jobs: str
    results: str
    cancel: str
    resume: str
    retry: str


class RowError(Public):
    """A CSV row refused (or, with `on_error=skip`, left out): its line, the column at fault, and why."""

    line: int
    column: str | None
    message: str


class BatchPublic(Public):
    """The batch: what `GET /v1/batches/{id}` answers and `batch.completed` carries."""

    id: str
    status: BatchStatus
    total: int = Field(description="rows in the file")
    counts: BatchCounts
    skipped: int = Field(description="rows left out (`on_error=skip`)")
    max_in_flight: int
    on_error: str = Field(description="reject or skip")
    webhook: str | None
    webhook_events_filter: list[str]
    paused_reason: str | None
    created_at: Timestamp
    completed_at: Timestamp | None
    urls: BatchUrls
    retry_of: str | None = Field(description="the batch whose failed and canceled rows this one re-runs")
    retried_by: str | None = Field(description="the batch that re-runs this one's failed and canceled rows")
    row_errors: list[RowError] | None = Field(
        default=None, description="on creation only, with `on_error=skip`: the rows left out and why"
    )


class BatchJobPage(Page):
    data: list[JobPublic]


class BatchPage(Page):
    data: list[BatchPublic]

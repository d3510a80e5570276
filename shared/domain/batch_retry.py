"""`POST /v1/batches/{id}/retry`: re-run a finished batch's failed and canceled rows as a NEW batch linked to it.

Why a new batch rather than a second attempt inside the same one: every part of a batch (its counts, admission by
`max_in_flight`, completion and its one `batch.completed` event, `results.csv`, the jobs list) stays exactly as it
is, and the original batch stays a true record of what happened. The retry is `retry_of` the original, the
original shows `retried_by`; a retry whose rows fail again is retried the same way, forming a chain.

- The new batch copies the original's options (`max_in_flight`, webhook, events filter, priority, `cancel_after`)
  and, for each failed or canceled row, its job's input: prompt, profile, assets, output, language, metadata,
  with the same `external_id` and CSV line number. Rows the CSV check skipped are not retried: they have no job
  (their input was wrong; fix and submit them as a new batch).
- Only a batch whose jobs have all ended can be retried (409 otherwise), and only when it has a failed or
  canceled row (409 otherwise). The credits the rows need are admitted as a batch submission's are (402).
- A batch has at most one retry (a unique index on `retry_of`): a second request, a double click included,
  answers the retry already made, `created=False`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shared.db import session_scope
from shared.domain import credit_admission
from shared.domain.batches import CHUNK, FINAL_BATCH, _turns_from_jobs, bulk_insert, get_batch, new_ids
from shared.domain.errors import Conflict
from shared.ids import new_id
from shared.nemo.wire import Credits
from shared.tables import Batch, BatchStatus, Job, JobStatus, Stage
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

RETRYABLE = [JobStatus.failed.value, JobStatus.canceled.value]
# what a retried row takes over from its earlier job: the row's input, as the CSV gave it
ROW_INPUT = (
    Job.batch_line,
    Job.external_id,
    Job.profile,
    Job.prompt,
    Job.assets,
    Job.output_format,
    Job.output_quality,
    Job.language,
    Job.meta,
)


@dataclass(frozen=True)
class Retried:
    batch_id: str
    created: bool  # False: the batch had been retried already; this is that retry


def retry_batch(tenant_id: str, batch_id: str, credits: Credits | None) -> Retried:
    """Retry the batch (see the module's docstring); commits. ``credits``: `credit_admission.prefetch()`, read
    before this opens its transaction."""
    try:
        with session_scope() as session:
            return _retry(session, tenant_id, batch_id, credits)
    except IntegrityError:
        # Two retries raced past each other (SQLite has no row lock to queue them): the unique index kept one.
        with session_scope() as session:
            existing = _retry_of(session, get_batch(session, tenant_id, batch_id).id)
        if existing is None:
            raise
        return Retried(existing, created=False)


def _retry(session: Session, tenant_id: str, batch_id: str, credits: Credits | None) -> Retried:
    original = get_batch(session, tenant_id, batch_id, for_update=True)  # queues a concurrent retry behind this
    existing = _retry_of(session, original.id)
    if existing is not None:
        return Retried(existing, created=False)
    _refuse_unfinished(original)
    needs = dict(
        session.exec(
            select(Job.profile, func.count())
            .where(Job.batch_id == original.id, Job.status.in_(RETRYABLE))
            .group_by(Job.profile)
        ).all()
    )
    rows = sum(needs.values())
    if rows == 0:
        raise Conflict(_nothing_to_retry(session, original), field="status")
    credit_admission.admit(session, needs, credits, what=f"retrying {rows} rows of batch {original.id}")
    retry = Batch(
        id=new_id("bat"),
        tenant_id=tenant_id,
        total=rows,
        max_in_flight=original.max_in_flight,
        on_error=original.on_error,
        webhook_url=original.webhook_url,
        webhook_events=list(original.webhook_events or []),
        priority=original.priority,
        cancel_after_s=original.cancel_after_s,
        retry_of=original.id,
    )
    session.add(retry)
    session.flush()  # the unique index on retry_of answers here when another retry got in first
    now = utcnow()
    for chunk in _retryable_rows(session, original.id):
        bulk_insert(session, Job.__table__, _job_rows(retry, chunk, now))
    session.connection().execute(_turns_from_jobs(now, batch_id=retry.id))
    log.info("batch %s retries %d rows of batch %s", retry.id, rows, original.id)
    return Retried(retry.id, created=True)


def _retry_of(session: Session, batch_id: str) -> str | None:
    return session.exec(select(Batch.id).where(Batch.retry_of == batch_id)).first()


def _refuse_unfinished(batch: Batch) -> None:
    if batch.completed_event_sent:
        return
    if batch.status == BatchStatus.paused.value:
        raise Conflict(
            f"batch {batch.id} is paused for credits: resume it (POST /v1/batches/{batch.id}/resume) or cancel it, "
            "and retry it once every job has ended",
            field="status",
        )
    if batch.status in FINAL_BATCH:
        raise Conflict(
            f"batch {batch.id} was canceled and its running jobs are still stopping; retry it once they have ended",
            field="status",
        )
    raise Conflict(
        f"batch {batch.id} is still {batch.status}; retry it once every job has ended (or cancel it first)",
        field="status",
    )


def _nothing_to_retry(session: Session, batch: Batch) -> str:
    succeeded = session.exec(
        select(func.count()).select_from(Job).where(Job.batch_id == batch.id, Job.status == JobStatus.succeeded.value)
    ).one()
    message = f"batch {batch.id} has no failed or canceled rows to retry ({succeeded} succeeded"
    skipped = batch.total - int(succeeded)
    if skipped > 0:
        message += f"; its {skipped} skipped rows had invalid input: fix them and submit them as a new batch"
    return message + ")"


def _retryable_rows(session: Session, batch_id: str) -> Iterator[list[Any]]:
    """The rows to retry, in CSV order, a chunk at a time (each chunk read before its COPY begins: the
    connection cannot read while it copies)."""
    after = -1
    while True:
        chunk = list(
            session.exec(
                select(*ROW_INPUT)
                .where(Job.batch_id == batch_id, Job.status.in_(RETRYABLE), Job.batch_line > after)
                .order_by(Job.batch_line)
                .limit(CHUNK)
            )
        )
        if not chunk:
            return
        yield chunk
        after = chunk[-1][0]


def _job_rows(retry: Batch, chunk: list[Any], now: datetime) -> Iterator[dict[str, Any]]:
    """The new jobs, laid out as `batches.job_values` lays out a CSV row's."""
    deadline = now + timedelta(seconds=retry.cancel_after_s) if retry.cancel_after_s else None
    for job_id, (line, external_id, profile, prompt, assets, fmt, quality, language, meta) in zip(
        new_ids("job", len(chunk)), chunk, strict=True
    ):
        yield {
            "id": job_id,
            "tenant_id": retry.tenant_id,
            "batch_id": retry.id,
            "batch_line": line,
            "external_id": external_id,
            "profile": profile,
            "prompt": prompt,
            "assets": list(assets or []),
            "files": [],
            "output_format": fmt,
            "output_quality": quality,
            "language": language,
            "webhook_url": retry.webhook_url,
            "webhook_events": list(retry.webhook_events or []),
            "metadata": dict(meta or {}),
            "status": JobStatus.queued.value,
            "stage": Stage.queued.value,
            "priority": retry.priority,
            "deadline_at": deadline,
            "created_at": now,
            "updated_at": now,
        }

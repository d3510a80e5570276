"""`GET /v1/batches`: a tenant's batches, newest first, cursor-paginated like `GET /v1/jobs`.

Each item is the batch object `GET /v1/batches/{id}` answers (`batches.batch_view`); a page's counts and retry
links are read in one query each, not one per batch.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from shared.domain.batches import batch_view
from shared.domain.errors import ValidationFailed
from shared.ids import is_id
from shared.tables import Batch, BatchStatus, Job, JobStatus


def parse_batch_statuses(values: list[str] | None) -> list[str] | None:
    """`status=completed&status=canceled` or `status=completed,canceled`; an unknown one is refused by name."""
    if not values:
        return None
    wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
    known = [s.value for s in BatchStatus]
    for value in wanted:
        if value not in known:
            raise ValidationFailed(f"status {value!r} is not one of {', '.join(known)}", field="status")
    return wanted or None


def encode_cursor(batch: Batch) -> str:
    return base64.urlsafe_b64encode(batch.id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API returned", field="cursor") from None
    if not is_id(raw, "bat"):
        raise ValidationFailed("cursor is not one this API returned", field="cursor")
    return raw


def list_batches(
    session: Session, tenant_id: str, *, status: list[str] | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[list[Batch], str | None]:
    """Newest first; ids sort by creation time, so the cursor is the last id seen (as for jobs)."""
    stmt = select(Batch).where(Batch.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(Batch.status.in_(status))
    if cursor:
        stmt = stmt.where(Batch.id < decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(Batch.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def batch_views(session: Session, rows: list[Batch]) -> list[dict[str, Any]]:
    """The batch objects of ``rows``, in their order."""
    ids = [b.id for b in rows]
    if not ids:
        return []
    counts = {b: {s.value: 0 for s in JobStatus} for b in ids}
    grouped = session.exec(
        select(Job.batch_id, Job.status, func.count()).where(Job.batch_id.in_(ids)).group_by(Job.batch_id, Job.status)
    )
    for batch_id, status, count in grouped:
        counts[batch_id][status] = int(count)
    retries = dict(session.exec(select(Batch.retry_of, Batch.id).where(Batch.retry_of.in_(ids))).all())
    return [batch_view(b, counts[b.id], retries.get(b.id)) for b in rows]

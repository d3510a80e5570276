"""Batches: a CSV of jobs, accepted whole (or with its bad rows set aside), run a few at a time, summed up once.

- Creation checks every row (shared/domain/batch_csv.py) while streaming the good ones into one COPY of the open
  transaction; the caller commits only once the whole file passed, so no job exists before every row was checked.
  A batch's jobs start at `stage="queued"`: only the first `max_in_flight` are dispatched, after commit.
- Admission, under a lock on the batch row, moves the oldest queued jobs (by CSV line) into the flow until
  `max_in_flight` of them are in flight. It runs at creation, whenever one of the batch's jobs ends (the job-end
  hook) and from the sweeper (so a lost hook never stalls a batch). Because a batch never has more than
  `max_in_flight` steps waiting in the queues, single jobs submitted meanwhile start within seconds.
- Completion: once every job has a final status, the batch is `completed` (or stays `canceled`) and ONE
  `batch.completed` event is written, guarded by `completed_event_sent` under the same lock.
"""

from __future__ import annotations

import base64
import functools
import heapq
import itertools
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Table, func, insert, literal, update
from sqlmodel import Session, select

from shared.artifacts.views import output_url
from shared.db import session_scope
from shared.domain import credit_admission
from shared.domain.batch_csv import MAX_REPORTED_ERRORS, CheckedRow, ErrorSpool, Scan, check_size, checked_rows
from shared.domain.errors import Conflict, NotFound, ValidationFailed
from shared.domain.events import emit
from shared.domain.job_input import EVENT_FILTERS, JobSpec
from shared.domain.jobs import cancel_job
from shared.domain.priority import cancel_after_s, priority_rank
from shared.ids import is_id, new_id
from shared.nemo.wire import Credits
from shared.settings import get_settings
from shared.tables import Artifact, ArtifactStatus, Batch, BatchRowError, BatchStatus, Job, JobStatus, JobTurn, Stage
from shared.timeutil import iso, utcnow
from shared.urlguard import ForbiddenUrl, check_static

log = logging.getLogger(__name__)

CHUNK = 1000
ON_ERROR = ("reject", "skip")
OPEN_STATUSES = [JobStatus.queued.value, JobStatus.starting.value, JobStatus.processing.value]
FINAL_BATCH = (BatchStatus.completed.value, BatchStatus.canceled.value)
DEFAULT_EVENTS = ["start", "completed"]


@dataclass(frozen=True)
class BatchOptions:
    on_error: str = "reject"
    max_in_flight: int = 50
    webhook: str | None = None
    webhook_events_filter: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    priority: int = 1  # shared/domain/priority.py
    cancel_after_s: float | None = None


@dataclass(frozen=True)
class CreatedBatch:
    batch: Batch
    scan: Scan


def parse_options(
    on_error: str | None = None,
    max_in_flight: str | int | None = None,
    webhook: str | None = None,
    events_filter: list[str] | None = None,
    *,
    priority: str | None = None,
    cancel_after: str | None = None,
) -> BatchOptions:
    """Check the batch's form fields; each refusal names its field."""
    settings = get_settings()
    on_error = (on_error or "reject").strip().lower()
    if on_error not in ON_ERROR:
        raise ValidationFailed(f"on_error must be one of {', '.join(ON_ERROR)}", field="on_error")
    cap = settings.batch_max_in_flight
    try:
        in_flight = cap if max_in_flight in (None, "") else int(str(max_in_flight).strip())
    except ValueError:
        raise ValidationFailed("max_in_flight must be a whole number", field="max_in_flight") from None
    if not 1 <= in_flight <= cap:
        raise ValidationFailed(f"max_in_flight must be between 1 and {cap}", field="max_in_flight")
    if webhook is not None and webhook.strip():
        try:
            webhook = check_static(webhook.strip())  # resolved and checked again when each webhook is sent
        except ForbiddenUrl as exc:
            raise ValidationFailed(f"webhook: {exc.reason}", field="webhook") from None
    else:
        webhook = None
    return BatchOptions(
        on_error,
        in_flight,
        webhook,
        _events_filter(events_filter),
        priority=priority_rank(priority),
        cancel_after_s=cancel_after_s(cancel_after, field="cancel_after"),
    )


def _events_filter(values: list[str] | None) -> list[str]:
    if values is None:
        return list(DEFAULT_EVENTS)
    wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
    bad = [v for v in wanted if v not in EVENT_FILTERS]
    if bad:
        raise ValidationFailed(
            f"unknown event filter {bad[0]!r}; choose from {', '.join(EVENT_FILTERS)}", field="webhook_events_filter"
        )
    return sorted(set(wanted), key=EVENT_FILTERS.index)


# ---- creation --------------------------------------------------------------------------------------------


def create_batch(
    session: Session, tenant_id: str, path: Path, options: BatchOptions, credits: Credits | None
) -> CreatedBatch:
    """Check the CSV at ``path`` and write the batch, its jobs and turns (and skipped rows) to ``session``.

    ``credits`` is the balance to admit the batch against (`credit_admission.prefetch()`, read before the session's
    transaction began), or None to admit it without a check.

    Checking and writing overlap: good rows stream into one COPY in the open transaction while later rows are still
    being checked (the database indexes one row while Python checks the next, on the other core). Nothing is
    visible, and nothing is dispatched, before the caller commits, which it does only after the whole file was
    checked: a refused file raises ValidationFailed and the caller rolls back. With `on_error=reject`, writing
    stops at the first bad row, so a bad file costs little database work.

    (Checking on a second thread while this one writes was tried and measured slower: the writer waits for the GIL
    after every round trip to the database.)"""
    check_size(path)
    batch = Batch(
        id=new_id("bat"),
        tenant_id=tenant_id,
        max_in_flight=options.max_in_flight,
        on_error=options.on_error,
        webhook_url=options.webhook,
        webhook_events=list(options.webhook_events_filter),
        priority=options.priority,
        cancel_after_s=options.cancel_after_s,
    )
    session.add(batch)
    session.flush()
    scan = Scan()
    rows = checked_rows(path, scan)
    spool = ErrorSpool(path.with_name(path.name + ".errors"))
    try:
        with spool:
            bulk_insert(session, Job.__table__, _job_rows(batch, rows, spool, options.on_error == "reject"))
            for _ in rows:  # writing stopped at a bad row: keep checking, to list every error
                pass
        _refuse_if_bad(scan, options)
        credit_admission.admit(
            session, scan.needs, credits, what=f"this batch of {scan.good} jobs", exclude_batch=batch.id
        )
        _write_rest(session, batch, scan, spool)
    finally:
        rows.close()
        spool.path.unlink(missing_ok=True)
    log.info("batch %s created: %d jobs, %d rows skipped", batch.id, scan.good, scan.bad_rows)
    return CreatedBatch(batch=batch, scan=scan)


def _job_rows(batch: Batch, rows: Iterator[CheckedRow], spool: ErrorSpool, reject: bool) -> Iterator[dict[str, Any]]:
    now = utcnow()
    ids = _ids("job")
    for row in rows:
        if row.errors:
            if reject:
                return
            spool.write(row)
        elif row.spec is not None:
            yield job_values(batch, row.spec, row.line, row.external_id, now, next(ids))


def _write_rest(session: Session, batch: Batch, scan: Scan, spool: ErrorSpool) -> None:
    """After the jobs: the batch's total, each job's turn (built by the database), the skipped rows."""
    batch.total = scan.rows
    session.add(batch)
    session.connection().execute(_turns_from_jobs(utcnow(), batch_id=batch.id))
    errors = (
        {"batch_id": batch.id, "line": line, "external_id": external_id, "column": column, "message": message}
        for line, external_id, cell_errors in spool.read()
        for column, message in cell_errors
    )
    bulk_insert(session, BatchRowError.__table__, errors)


def _ids(prefix: str) -> Iterator[str]:
    while True:
        yield from new_ids(prefix, CHUNK)


def _refuse_if_bad(scan: Scan, options: BatchOptions) -> None:
    details = [e.public() for e in scan.errors]
    if scan.fatal:
        fatal = scan.fatal_error or scan.errors[-1]
        raise ValidationFailed(f"line {fatal.line}: {fatal.message}", field="file", details=details)
    if scan.error_count and (options.on_error == "reject" or scan.good == 0):
        listed = f" (the first {MAX_REPORTED_ERRORS} are listed)" if scan.error_count > len(details) else ""
        what = "every row has errors" if scan.good == 0 else "nothing was created"
        raise ValidationFailed(
            f"{scan.error_count} errors in {scan.bad_rows} of {scan.rows} rows{listed}; {what}. "
            f"First: line {scan.errors[0].line}"
            + (f", column {scan.errors[0].column}" if scan.errors[0].column else "")
            + f": {scan.errors[0].message}",
            field="file",
            details=details,
        )


def _turns_from_jobs(now: datetime, *, batch_id: str) -> Any:
    """Each job's one turn, as `turn_values` describes it, built by the database from the job rows."""
    template = turn_values({"id": None, "prompt": None, "assets": []}, now)
    from_job = {"job_id": Job.id, "instruction": Job.prompt, "assets": Job.assets}
    table = JobTurn.__table__
    defaults = _scalar_defaults(table)
    columns = [*[c for c in defaults if c not in template], *template]
    values = [
        from_job[c] if c in from_job else literal(template.get(c, defaults.get(c)), table.c[c].type).label(c)
        for c in columns
    ]
    return insert(table).from_select(columns, select(*values).where(Job.batch_id == batch_id))


def bulk_insert(session: Session, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Insert ``rows`` (column name -> value; every row the same keys in the same order) in the session's
    transaction: one streamed COPY on PostgreSQL (an executemany spends ~100 us a row in bind processing),
    executemany in chunks elsewhere. Columns the rows leave out get the model's scalar default, since COPY does not
    apply Python-side defaults."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    rows = itertools.chain([first], rows)
    defaults = {c: v for c, v in _scalar_defaults(table).items() if c not in first}
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        while chunk := list(itertools.islice(rows, CHUNK)):
            conn.execute(insert(table), [{**defaults, **row} for row in chunk])
        return
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    json_at = [i for i, c in enumerate(first) if c in json_columns]
    tail = [_json_text(v) if c in json_columns else v for c, v in defaults.items()]
    names = ", ".join(f'"{c}"' for c in [*first, *defaults])
    raw = conn.connection.driver_connection
    last: dict[int, tuple[Any, str | None]] = {}  # column -> (value, its JSON): batch rows often repeat a value
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = list(row.values())
            for i in json_at:
                value = values[i]
                seen = last.get(i)
                if seen is None or seen[0] != value:
                    seen = last[i] = (value, _json_text(value))
                values[i] = seen[1]
            copy.write_row(values + tail)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_text(value: Any) -> str | None:
    if value is None:
        return None  # SQL NULL
    if not value and isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"
    return _dumps(value)


@functools.cache
def _scalar_defaults(table: Table) -> dict[str, Any]:
    return {
        c.name: c.default.arg for c in table.columns if c.default is not None and getattr(c.default, "is_scalar", False)
    }


def job_values(
    batch: Batch, spec: JobSpec, line: int, external_id: str | None, now: datetime, job_id: str | None = None
) -> dict[str, Any]:
    """The `jobs` row for one CSV row: what `new_job_row` makes of the same JobSpec, as a plain mapping (building
    100,000 ORM objects would take minutes)."""
    return {
        "id": job_id or new_id("job"),
        "tenant_id": batch.tenant_id,
        "batch_id": batch.id,
        "batch_line": line,
        "external_id": external_id,
        "profile": spec.profile,
        "prompt": spec.prompt or "",
        "assets": list(spec.assets),
        "files": [],
        "output_format": spec.output.format,
        "output_quality": spec.output.quality,
        "language": spec.language,
        "webhook_url": batch.webhook_url,
        "webhook_events": list(batch.webhook_events or []),
        "metadata": dict(spec.metadata),
        "status": JobStatus.queued.value,
        "stage": Stage.queued.value,
        "priority": batch.priority,
        "deadline_at": now + timedelta(seconds=batch.cancel_after_s) if batch.cancel_after_s else None,
        "created_at": now,
        "updated_at": now,
    }


_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghjkmnpqrstvwxyz")


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids laid out as `shared.ids.new_id` makes them (time part, then 80 random bits in lower-case
    Crockford base32), with one `os.urandom` and one base32 pass for all of them: new_id's per-character loop
    was a tenth of the time to accept a 100,000-row batch."""
    head = new_id(prefix)[: len(prefix) + 11]  # "<prefix>_" and the 10 time characters
    tail = base64.b32encode(os.urandom(10 * count)).decode().translate(_CROCKFORD)
    return [head + tail[i : i + 16] for i in range(0, 16 * count, 16)]


def turn_values(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The job's one turn (a CSV row has no steps): what `turn_rows` makes, as a mapping."""
    return {
        "job_id": job["id"],
        "seq": 0,
        "kind": "step",
        "instruction": job["prompt"],
        "assets": list(job["assets"]),
        "intent": "sse",
        "uploaded": [],
        "messages": [],
        "tool_calls": [],
        "created_at": now,
    }


# ---- admission and completion ----------------------------------------------------------------------------


def complete_if_done(session: Session, batch: Batch) -> bool:
    """When every job of the batch has ended: mark it completed and write `batch.completed`, exactly once."""
    if batch.completed_event_sent:
        return True
    open_job = session.exec(
        select(Job.id).where(Job.batch_id == batch.id, Job.status.in_(OPEN_STATUSES)).limit(1)
    ).first()
    if open_job is not None:
        return False
    batch.completed_at = batch.completed_at or utcnow()
    if batch.status != BatchStatus.canceled.value:
        batch.status = BatchStatus.completed.value
    batch.completed_event_sent = True
    session.add(batch)
    session.flush()
    emit(
        session,
        tenant_id=batch.tenant_id,
        type="batch.completed",
        data=batch_public(session, batch),
        batch_id=batch.id,
        webhook_url=batch.webhook_url,
    )
    log.info("batch %s %s", batch.id, batch.status)
    return True


def settle(batch_id: str) -> int:
    """Complete the batch when every job has ended (its jobs are admitted by the scheduler,
    services/worker/scheduler.py); 1 when it completed now."""
    with session_scope() as session:
        batch = session.exec(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
        if batch is None or batch.completed_event_sent:
            return 0
        return int(complete_if_done(session, batch))


def sweep_batches() -> int:
    """The sweeper's check: settle every batch that has not sent `batch.completed` yet."""
    with session_scope() as session:
        ids = list(session.exec(select(Batch.id).where(Batch.completed_event_sent.is_(False))))
    completed = 0
    for batch_id in ids:
        try:
            completed += settle(batch_id)
        except Exception:
            log.exception("settling batch %s failed; next sweep retries", batch_id)
    return completed


# ---- reading ---------------------------------------------------------------------------------------------


def get_batch(session: Session, tenant_id: str, batch_id: str, *, for_update: bool = False) -> Batch:
    if not is_id(batch_id, "bat"):
        raise NotFound(f"no batch {batch_id[:60]!r}")
    stmt = select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    batch = session.exec(stmt).first()
    if batch is None:  # another tenant's batch is "not found" too
        raise NotFound(f"no batch {batch_id!r}")
    return batch


def status_counts(session: Session, batch_id: str) -> dict[str, int]:
    counts = {s.value: 0 for s in JobStatus}
    rows = session.exec(select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status))
    for status, count in rows:
        counts[status] = int(count)
    return counts


def batch_urls(batch_id: str) -> dict[str, str]:
    base = get_settings().public_url.rstrip("/") + f"/v1/batches/{batch_id}"
    return {
        "get": base,
        "jobs": f"{base}/jobs",
        "results": f"{base}/results.csv",
        "cancel": f"{base}/cancel",
        "resume": f"{base}/resume",
        "retry": f"{base}/retry",
    }


def batch_public(session: Session, batch: Batch) -> dict[str, Any]:
    """THE batch object: what `GET /v1/batches/{id}` returns and `batch.completed` carries."""
    retried_by = session.exec(select(Batch.id).where(Batch.retry_of == batch.id)).first()
    return batch_view(batch, status_counts(session, batch.id), retried_by)


def batch_view(batch: Batch, counts: dict[str, int], retried_by: str | None) -> dict[str, Any]:
    """The batch object from its row, its jobs' counts per status and the id of its retry (if any)."""
    return {
        "id": batch.id,
        "status": batch.status,
        "total": batch.total,
        "counts": counts,
        "skipped": batch.total - sum(counts.values()),
        "max_in_flight": batch.max_in_flight,
        "on_error": batch.on_error,
        "webhook": batch.webhook_url,
        "webhook_events_filter": list(batch.webhook_events or []),
        "paused_reason": batch.paused_reason,
        "created_at": iso(batch.created_at),
        "completed_at": iso(batch.completed_at),
        "retry_of": batch.retry_of,  # the batch whose failed and canceled rows this one re-runs
        "retried_by": retried_by,  # the batch that re-runs this one's failed and canceled rows
        "urls": batch_urls(batch.id),
    }


def list_batch_jobs(
    session: Session, batch: Batch, *, status: list[str] | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[list[Job], str | None]:
    """The batch's jobs in input order (by CSV line); the cursor is the last line seen."""
    stmt = select(Job).where(Job.batch_id == batch.id)
    if status:
        stmt = stmt.where(Job.status.in_(status))
    if cursor:
        stmt = stmt.where(Job.batch_line > _decode_line_cursor(cursor))
    rows = list(session.exec(stmt.order_by(Job.batch_line).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_line_cursor(rows[-1].batch_line or 0) if more and rows else None
    return rows, next_cursor


def _encode_line_cursor(line: int) -> str:
    return base64.urlsafe_b64encode(f"line:{line}".encode()).decode().rstrip("=")


def _decode_line_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, line = raw.partition(":")
        if kind != "line" or not line.isascii() or not line.isdigit() or len(line) > 9:
            raise ValueError(raw)
        return int(line)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API returned", field="cursor") from None


# ---- results ---------------------------------------------------------------------------------------------

RESULT_FIELDS = (Job.batch_line, Job.external_id, Job.status, Job.output, Job.error_code, Job.error_message)
# line, external_id, status, output_url, error, artifact_url, artifact_sha256
ResultRow = tuple[int, str | None, str, str | None, str | None, str | None, str | None]


def result_rows(session: Session, batch_id: str) -> Iterator[ResultRow]:
    """One row per input row, in input order: the jobs and the skipped rows, both read as streams."""
    latest = (  # the job's artifact: its latest turn's (the job's output is that turn's)
        select(Artifact.id)
        .where(Artifact.job_id == Job.id)
        .order_by(Artifact.turn_seq.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )
    jobs = session.exec(
        select(*RESULT_FIELDS, Job.id, Artifact.status, Artifact.turn_seq, Artifact.sha256)
        .outerjoin(Artifact, Artifact.id == latest)
        .where(Job.batch_id == batch_id)
        .order_by(Job.batch_line)
        .execution_options(yield_per=CHUNK)
    )
    job_rows = (
        (line or 0, ext, status, (output or {}).get("url"), _error_text(code, message), *_artifact_cells(*art))
        for line, ext, status, output, code, message, *art in jobs
    )
    yield from heapq.merge(job_rows, _skipped_rows(session, batch_id), key=lambda row: row[0])


def _artifact_cells(job_id: str, status: str | None, seq: int | None, sha256: str | None) -> tuple[str | None, ...]:
    """The artifact's URL and sha256 once it is stored (empty cells before, or without one)."""
    if status != ArtifactStatus.stored.value or seq is None:
        return None, None
    return output_url(job_id, seq), sha256


def _skipped_rows(session: Session, batch_id: str) -> Iterator[ResultRow]:
    errors = session.exec(
        select(BatchRowError.line, BatchRowError.external_id, BatchRowError.column, BatchRowError.message)
        .where(BatchRowError.batch_id == batch_id)
        .order_by(BatchRowError.line, BatchRowError.id)
        .execution_options(yield_per=CHUNK)
    )
    for line, group in itertools.groupby(errors, key=lambda row: row[0]):
        items = list(group)
        text = "; ".join(f"{col}: {msg}" if col else msg for _, _, col, msg in items)
        yield line, items[0][1], "skipped", None, text, None, None


def _error_text(code: str | None, message: str | None) -> str | None:
    if not code and not message:
        return None
    return f"{code}: {message}" if code and message else (code or message)


# ---- cancel ----------------------------------------------------------------------------------------------


def cancel_batch(tenant_id: str, batch_id: str) -> list[tuple[str, str]]:
    """Cancel a batch: its queued jobs at once (in one statement, without a per-job event), the running ones
    through `cancel_job`. Returns the (profile, render id) pairs to cancel upstream.

    It commits as it goes, in short transactions: the batch and its queued jobs first, then each running job in a
    transaction of its own, then the completion check. Holding every running job's lock in one transaction
    deadlocked with a worker that renews the leases of several of them in one transaction, in another order."""
    with session_scope() as session:
        batch = get_batch(session, tenant_id, batch_id, for_update=True)
        if batch.status in FINAL_BATCH:
            return []
        batch.status = BatchStatus.canceled.value
        session.add(batch)
        _cancel_queued(session, batch.id)
        running = list(session.exec(select(Job.id).where(Job.batch_id == batch.id, Job.status.in_(OPEN_STATUSES))))
    renders: list[tuple[str, str]] = []
    for job_id in sorted(running):
        with session_scope() as session:
            job, render_id = cancel_job(session, tenant_id, job_id)
            if render_id:
                renders.append((job.profile, render_id))
    with session_scope() as session:
        complete_if_done(session, get_batch(session, tenant_id, batch_id, for_update=True))
    return renders


def _cancel_queued(session: Session, batch_id: str) -> None:
    now = utcnow()
    session.connection().execute(
        update(Job.__table__)
        .where(Job.batch_id == batch_id, Job.status == JobStatus.queued.value, Job.stage == Stage.queued.value)
        .values(
            status=JobStatus.canceled.value,
            error_code="canceled",
            error_message="canceled with its batch before it started",
            cancel_requested=True,
            completed_at=now,
            updated_at=now,
        )
    )


# ---- out of credits: pause, then resume ------------------------------------------------------------------


def pause_for_credits(batch_id: str, reason: str) -> None:
    """The upstream said 2001 for one of the batch's jobs: stop admitting more (those would fail the same way)."""
    with session_scope() as session:
        batch = session.exec(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
        if batch is None or batch.status in FINAL_BATCH or batch.status == BatchStatus.paused.value:
            return
        batch.status = BatchStatus.paused.value
        batch.paused_reason = reason
        session.add(batch)
    log.warning("batch %s paused: out of upstream credits", batch_id)


def resume_batch(session: Session, tenant_id: str, batch_id: str, credits: Credits | None) -> Batch:
    """Continue a paused batch, if the credits its waiting jobs need are there (402 if not). ``credits``: as for
    `create_batch`."""
    batch = get_batch(session, tenant_id, batch_id, for_update=True)
    if batch.status != BatchStatus.paused.value:
        raise Conflict(f"batch is {batch.status}, not paused", field="status")
    waiting = session.exec(
        select(Job.profile, func.count())
        .where(Job.batch_id == batch.id, Job.status == JobStatus.queued.value)
        .group_by(Job.profile)
    ).all()
    credit_admission.admit(session, dict(waiting), credits, what="the batch's remaining jobs", exclude_batch=batch.id)
    batch.status = BatchStatus.running.value
    batch.paused_reason = None
    session.add(batch)
    return batch

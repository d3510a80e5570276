"""The bulk insert writes exactly the rows `create_job` would: the mappings match `new_job_row` / `turn_rows`
column for column, and `bulk_insert` (COPY on PostgreSQL) fills every default the model declares."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from shared.db import session_scope
from shared.domain.batches import _turns_from_jobs, bulk_insert, job_values, turn_values
from shared.domain.job_input import JobSpec
from shared.domain.jobs import new_job_row, turn_rows
from shared.ids import new_id
from shared.tables import Batch, Job, JobTurn
from shared.timeutil import utcnow
from tests.batches.helpers import KLING

SPEC = JobSpec(
    prompt="A fox in snow",
    profile=KLING,
    assets=["https://93.184.216.34/a.jpg"],
    output={"quality": "low"},
    language="de",
    metadata={"campaign": "spring"},
    webhook="http://127.0.0.1:9/hook",
    webhook_events_filter=["completed"],
)


def columns_of(model: type) -> dict[str, str]:
    """column name -> attribute name (`metadata` is `meta` on Job)."""
    return {attr.columns[0].name: attr.key for attr in inspect(model).mapper.column_attrs}


def test_job_mapping_matches_new_job_row(database, tenant) -> None:
    batch = Batch(id="bat_x", tenant_id="ten_x", webhook_url=SPEC.webhook, webhook_events=SPEC.webhook_events_filter)
    values = job_values(batch, SPEC, 7, "ext-7", utcnow())
    ref = new_job_row("ten_x", SPEC, batch_id="bat_x", batch_line=7, external_id="ext-7")
    skip = {"id", "created_at", "updated_at"}
    for column, attr in columns_of(Job).items():
        if column in skip:
            continue
        default = Job.__table__.c[column].default
        expected = getattr(ref, attr)
        got = values.get(column, default.arg if default is not None else None)
        assert got == expected, column


def test_turn_mapping_matches_turn_rows() -> None:
    job = {"id": "job_x", "prompt": SPEC.prompt, "assets": SPEC.assets}
    values = turn_values(job, utcnow())
    [ref] = turn_rows("job_x", SPEC)
    for column, attr in columns_of(JobTurn).items():
        if column in ("id", "created_at"):
            continue
        default = JobTurn.__table__.c[column].default
        assert values.get(column, default.arg if default is not None else None) == getattr(ref, attr), column


def test_bulk_insert_fills_model_defaults_and_turns_come_from_jobs(database, tenant) -> None:
    from shared.tables import Tenant

    with session_scope() as session:
        tenant_id = session.exec(select(Tenant.id).where(Tenant.name == tenant.name)).one()
        batch = Batch(id=new_id("bat"), tenant_id=tenant_id, webhook_events=[])
        session.add(batch)
        session.flush()
        rows = [job_values(batch, SPEC, line, None, utcnow()) for line in (2, 3)]
        bulk_insert(session, Job.__table__, iter(rows))
        session.connection().execute(_turns_from_jobs(utcnow(), batch_id=batch.id))
        batch_id = batch.id
    with session_scope() as session:
        jobs = list(session.exec(select(Job).where(Job.batch_id == batch_id).order_by(Job.batch_line)))
        turns = list(session.exec(select(JobTurn).where(JobTurn.job_id.in_([j.id for j in jobs]))))
        turns.sort(key=lambda t: t.job_id != jobs[0].id)  # the first line's turn first (rows come in any order)
    assert [j.batch_line for j in jobs] == [2, 3]
    job = jobs[0]
    assert (job.progress, job.step_seq, job.attempts, job.turn_index, job.cancel_requested) == (0, 0, 0, 0, False)
    assert (job.meta, job.assets, job.files, job.output) == ({"campaign": "spring"}, SPEC.assets, [], None)
    assert len(turns) == 2 and all(t.id is not None for t in turns)
    turn = turns[0]
    assert (turn.status, turn.message_state, turn.upload_done, turn.render_submitted) == (
        "pending",
        "pending",
        False,
        False,
    )
    assert (turn.uploaded, turn.messages, turn.draft, turn.output) == ([], [], None, None)
    [ref] = turn_rows(jobs[0].id, SPEC)
    for column, attr in columns_of(JobTurn).items():
        if column not in ("id", "created_at"):
            assert getattr(turn, attr) == getattr(ref, attr), column


def test_bulk_ids_look_like_new_id() -> None:
    import re

    from shared.domain.batches import new_ids

    shape = re.compile(r"^job_[0-9a-hjkmnp-tv-z]{26}$")
    ids = new_ids("job", 2000)
    single = new_id("job")
    assert len(set(ids)) == 2000
    assert all(shape.match(i) for i in ids) and shape.match(single)
    assert ids[0][:8] <= single[:8]  # same time layout: the leading characters order by creation time
    assert new_ids("job", 0) == []


@pytest.fixture()
def no_credit_admission(settings_env) -> None:
    """For tests of the write path: whatever balance an earlier test left in the simulator must not matter."""
    settings_env(REELMILL_CREDIT_ADMISSION="false")


def test_a_batch_on_sqlite_the_laptop_default(tmp_path, database, no_credit_admission) -> None:
    """`reelmill up` without PostgreSQL runs on SQLite: no COPY there, the same rows by executemany."""
    from sqlmodel import Session, SQLModel

    from shared.db.engine import make_engine
    from shared.domain.batches import BatchOptions, create_batch, result_rows
    from shared.domain.tenants import get_or_create_tenant
    from tests.batches.helpers import recording

    engine = make_engine(f"sqlite:///{tmp_path / 'laptop.db'}")
    SQLModel.metadata.create_all(engine)
    csv_path = tmp_path / "jobs.csv"
    rows = "".join(f"Clip {i},e{i},{'high' if i != 3 else 'ultra'}\n" for i in range(2500))
    csv_path.write_text("prompt,external_id,quality\n" + rows)
    with recording() as recorder, Session(engine, expire_on_commit=False) as session:
        tenant_id = get_or_create_tenant(session, "laptop").id
        made = create_batch(session, tenant_id, csv_path, BatchOptions(on_error="skip", max_in_flight=4), None)
        session.commit()
        results = list(result_rows(session, made.batch.id))
        turns = session.exec(select(JobTurn).join(Job, Job.id == JobTurn.job_id)).all()
    assert (made.batch.total, made.scan.good, made.scan.bad_rows) == (2500, 2499, 1)
    assert recorder.jobs == []  # the scheduler admits them (services/worker/scheduler.py)
    assert [r[0] for r in results] == list(range(2, 2502))
    assert results[3][2:5] == ("skipped", None, "quality: 'ultra' is not allowed; use 'low', 'medium' or 'high'")
    assert len(turns) == 2499 and {t.status for t in turns} == {"pending"}
    engine.dispose()

"""The worker's conditional writes of a job and its turns, built once per set of columns and reused.

A statement object built anew for every write costs more CPU than the write's round trip: SQLAlchemy coerces
every clause and computes the statement's cache key each time. Built once (values and conditions as bind
parameters) it is constructed once and its cache key is memoized; each write only binds its values. The SQL is
the same as before.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, exists, select, update
from sqlalchemy import inspect as sa_inspect

from shared.tables import Job, JobTurn

JOBS = Job.__table__  # type: ignore[attr-defined]
TURNS = JobTurn.__table__  # type: ignore[attr-defined]
# attribute -> table column (`meta` is the `metadata` column)
JOB_COLUMNS = {c.key: c.columns[0] for c in sa_inspect(Job).column_attrs}
TURN_COLUMNS = {c.key: c.columns[0] for c in sa_inspect(JobTurn).column_attrs}
_SET = "v_"  # bind names of the SET values: never a column's own name (SQLAlchemy reserves those)


@lru_cache(maxsize=256)
def job_update(names: tuple[str, ...]) -> Update:
    """``UPDATE jobs SET <names>`` where the job is ``w_id`` and ``w_owner`` still holds it for step ``w_seq``."""
    return (
        update(JOBS)
        .where(
            JOBS.c.id == bindparam("w_id"),
            JOBS.c.lease_owner == bindparam("w_owner"),
            JOBS.c.step_seq == bindparam("w_seq"),
        )
        .values(_values(JOB_COLUMNS, names))
    )


@lru_cache(maxsize=256)
def turn_update(names: tuple[str, ...]) -> Update:
    """``UPDATE job_turns SET <names>`` of turn ``w_id``."""
    return update(TURNS).where(TURNS.c.id == bindparam("w_id")).values(_values(TURN_COLUMNS, names))


@lru_cache(maxsize=256)
def turn_checkpoint(names: tuple[str, ...]) -> Update:
    """``turn_update`` that lands only while ``w_owner`` still holds job ``w_job`` for step ``w_seq``."""
    still_ours = exists(
        select(JOBS.c.id).where(
            JOBS.c.id == bindparam("w_job"),
            JOBS.c.lease_owner == bindparam("w_owner"),
            JOBS.c.step_seq == bindparam("w_seq"),
        )
    )
    return turn_update(names).where(still_ours)


def set_params(values: dict[str, Any]) -> dict[str, Any]:
    """The bind parameters of the SET values ``values`` (attribute name -> value)."""
    return {_SET + name: value for name, value in values.items()}


def _values(columns: dict[str, Any], names: tuple[str, ...]) -> dict[Any, Any]:
    return {columns[name]: bindparam(_SET + name, type_=columns[name].type) for name in names}

"""The Alembic migrations build exactly the schema the models describe, on PostgreSQL and on SQLite."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import shared.tables  # noqa: F401
from shared.db.engine import make_engine
from shared.db.migrate import upgrade_head


def diffs(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    finally:
        engine.dispose()


def test_postgres_schema_matches_the_models(database):
    assert diffs(database) == []


def test_sqlite_schema_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade_head(url)
    upgrade_head(url)  # a second run is a no-op
    assert diffs(url) == []

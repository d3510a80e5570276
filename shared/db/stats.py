"""Counting the SQL statements each process sends (shared/metrics.py, by role), so that what a job costs in
database work is a figure, not a guess."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared import logs, metrics


def count_statements(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _counted(*_: object) -> None:
        metrics.db_statement(logs.role())

"""Alembic, driven from code: `reelmill migrate`, the test fixtures and `reelmill up` all call upgrade_head()."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().effective_database_url).replace("%", "%%"))
    return cfg


def upgrade_head(url: str | None = None) -> None:
    command.upgrade(alembic_config(url), "head")

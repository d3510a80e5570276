"""engine: throttled jobs resume a stage; parked jobs wake at a time; the session's draft fingerprint; when a
message send began

Revision ID: engine_0001
Revises: f5506fc7580c
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "engine_0001"
down_revision: str | None = "f5506fc7580c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("resume_stage", sa.String(length=20), nullable=True))
        jobs.add_column(sa.Column("draft_fp", sa.String(length=32), nullable=True))
        jobs.add_column(sa.Column("wake_at", sa.DateTime(timezone=True), nullable=True))
        jobs.drop_column("last_still_working_at")
    op.create_index(
        "ix_jobs_wake",
        "jobs",
        ["wake_at"],
        postgresql_where=sa.text("wake_at IS NOT NULL"),
        sqlite_where=sa.text("wake_at IS NOT NULL"),
    )
    with op.batch_alter_table("job_turns") as turns:
        turns.add_column(sa.Column("message_sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_index("ix_jobs_wake", table_name="jobs")
    with op.batch_alter_table("job_turns") as turns:
        turns.drop_column("message_sent_at")
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("last_still_working_at", sa.DateTime(timezone=True), nullable=True))
        jobs.drop_column("wake_at")
        jobs.drop_column("draft_fp")
        jobs.drop_column("resume_stage")

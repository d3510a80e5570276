"""engine: priorities, deadlines, lost sessions counted, tenants' weights and caps; indexes for the scheduler's
picks

Revision ID: engine_0002
Revises: a7f1c2e9b001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "engine_0002"
down_revision: str | None = "a7f1c2e9b001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "stage IN ('queued', 'throttled')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        jobs.add_column(sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True))
        jobs.add_column(sa.Column("sessions_lost", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batches.add_column(sa.Column("cancel_after_s", sa.Float(), nullable=True))
    with op.batch_alter_table("tenants") as tenants:
        tenants.add_column(sa.Column("weight", sa.Integer(), nullable=False, server_default="1"))
        tenants.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
    op.create_index(
        "ix_jobs_waiting",
        "jobs",
        ["tenant_id", "stage", "priority", "id"],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )
    op.create_index(
        "ix_jobs_deadline",
        "jobs",
        ["deadline_at"],
        postgresql_where=sa.text("deadline_at IS NOT NULL"),
        sqlite_where=sa.text("deadline_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_deadline", table_name="jobs")
    op.drop_index("ix_jobs_waiting", table_name="jobs")
    with op.batch_alter_table("tenants") as tenants:
        tenants.drop_column("max_in_flight")
        tenants.drop_column("weight")
    with op.batch_alter_table("batches") as batches:
        batches.drop_column("cancel_after_s")
        batches.drop_column("priority")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("sessions_lost")
        jobs.drop_column("deadline_at")
        jobs.drop_column("priority")

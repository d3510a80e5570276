"""renders: a turn counts its renders that failed upstream (each is submitted again, up to REELMILL_RENDER_RETRIES)

Revision ID: renders_0001
Revises: batches_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "renders_0001"
down_revision: str | None = "batches_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_turns") as turns:
        turns.add_column(sa.Column("renders_failed", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job_turns") as turns:
        turns.drop_column("renders_failed")

"""batches: a retry links to the batch it re-runs (one retry per batch); the tenant's list, newest first

Revision ID: batches_0001
Revises: engine_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "batches_0001"
down_revision: str | None = "engine_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("retry_of", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batches.create_foreign_key("fk_batches_retry_of", "batches", ["retry_of"], ["id"])
        batches.create_index("ux_batches_retry_of", ["retry_of"], unique=True)
        batches.create_index("ix_batches_tenant_created", ["tenant_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.drop_index("ix_batches_tenant_created")
        batches.drop_index("ux_batches_retry_of")
        batches.drop_constraint("fk_batches_retry_of", type_="foreignkey")
        batches.drop_column("retry_of")

"""Health and drift: the deployments' drift record and the reconciler's shard leases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deployments",
        sa.Column("drift", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )
    op.create_table(
        "reconcile_shards",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("shard", name="pk_reconcile_shards"),
    )


def downgrade() -> None:
    op.drop_table("reconcile_shards")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("drift")

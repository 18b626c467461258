"""The ETSI SOL003 face's subscriptions, and what its occurrences report: resource changes and
the last error.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable
    )


def upgrade() -> None:
    op.add_column("vnf_instances", _json("resources", nullable=True))
    op.add_column("vnf_lcm_op_occs", _json("resources_before", nullable=True))
    op.add_column("vnf_lcm_op_occs", _json("resource_changes", nullable=True))
    op.add_column("vnf_lcm_op_occs", _json("error", nullable=True))
    op.create_table(
        "vnf_lcm_subscriptions",
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("api_major", sa.Integer(), nullable=False),
        sa.Column("api_base", sa.Text(), nullable=False),
        sa.Column("manager", sa.String(255), nullable=True),
        sa.Column("callback_uri", sa.Text(), nullable=False),
        _json("filter"),
        sa.Column("verbosity", sa.String(8), nullable=False),
        _json("authentication", nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_vnf_lcm_subscriptions"),
    )
    op.create_index(
        "ix_vnf_lcm_subscriptions_created_at_subscription_id",
        "vnf_lcm_subscriptions",
        ["created_at", "subscription_id"],
    )


def downgrade() -> None:
    op.drop_table("vnf_lcm_subscriptions")
    op.drop_column("vnf_lcm_op_occs", "error")
    op.drop_column("vnf_lcm_op_occs", "resource_changes")
    op.drop_column("vnf_lcm_op_occs", "resources_before")
    op.drop_column("vnf_instances", "resources")

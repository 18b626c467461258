"""The ETSI SOL005 face: VNF packages (vnfpkgm) beside the native packages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "vnf_packages",
        sa.Column("vnf_pkg_id", sa.String(300), nullable=False),
        sa.Column("package_id", sa.String(300), nullable=True),
        sa.Column("onboarding_state", sa.String(16), nullable=False),
        _json("user_defined_data"),
        _json("vnfd", nullable=True),
        _json("content", nullable=True),
        _json("onboarding_failure", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("vnf_pkg_id", name="pk_vnf_packages"),
        sa.UniqueConstraint("package_id", name="uq_vnf_packages_package_id"),
    )
    op.create_index(
        "ix_vnf_packages_created_at_vnf_pkg_id", "vnf_packages", ["created_at", "vnf_pkg_id"]
    )


def downgrade() -> None:
    op.drop_table("vnf_packages")

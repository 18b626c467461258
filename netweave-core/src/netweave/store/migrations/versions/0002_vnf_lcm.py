"""The ETSI SOL003 face: VNF instances and VNF LCM operation occurrences.

Revision ID: 0002
Revises: 0001
Create Date: 2027-01-10

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
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
        "vnf_instances",
        sa.Column("vnf_instance_id", sa.String(64), nullable=False),
        sa.Column("vnfd_id", sa.String(300), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("deployment_id", sa.String(300), nullable=True),
        sa.Column("instantiate_operation_id", sa.String(64), nullable=True),
        sa.Column("flavour_id", sa.String(255), nullable=True),
        _json("aspects"),
        _json("properties"),
        _json("metadata"),
        _json("extensions"),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("vnf_instance_id", name="pk_vnf_instances"),
    )
    op.create_index(
        "ix_vnf_instances_created_at_vnf_instance_id",
        "vnf_instances",
        ["created_at", "vnf_instance_id"],
    )
    op.create_index("ix_vnf_instances_deployment_id", "vnf_instances", ["deployment_id"])

    op.create_table(
        "vnf_lcm_op_occs",
        sa.Column("op_occ_id", sa.String(64), nullable=False),
        sa.Column("vnf_instance_id", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        _json("operation_params"),
        _json("changed_info", nullable=True),
        sa.Column("state", sa.String(16), nullable=True),
        _ts("start_time"),
        sa.PrimaryKeyConstraint("op_occ_id", name="pk_vnf_lcm_op_occs"),
    )
    op.create_index(
        "ix_vnf_lcm_op_occs_start_time_op_occ_id", "vnf_lcm_op_occs", ["start_time", "op_occ_id"]
    )
    op.create_index(
        "ix_vnf_lcm_op_occs_vnf_instance_id_start_time",
        "vnf_lcm_op_occs",
        ["vnf_instance_id", "start_time", "op_occ_id"],
    )


def downgrade() -> None:
    op.drop_table("vnf_lcm_op_occs")
    op.drop_table("vnf_instances")

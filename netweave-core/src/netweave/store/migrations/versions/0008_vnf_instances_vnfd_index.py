"""An index on ``vnf_instances (vnfd_id, created_at, vnf_instance_id)``: a SOL003 list filtered
on ``vnfdId`` (the common SMO query) is an index range in list order instead of a walk over
every instance. The column now always names the package the instance runs (the gateway
follows its deployment's updates), so the rows that predate that are brought up to date.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE vnf_instances SET vnfd_id = (SELECT d.package_id FROM deployments d"
        " WHERE d.deployment_id = vnf_instances.deployment_id)"
        " WHERE EXISTS (SELECT 1 FROM deployments d"
        " WHERE d.deployment_id = vnf_instances.deployment_id"
        " AND d.package_id <> vnf_instances.vnfd_id)"
    )
    op.create_index(
        "ix_vnf_instances_vnfd_id_created_at",
        "vnf_instances",
        ["vnfd_id", "created_at", "vnf_instance_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_vnf_instances_vnfd_id_created_at", table_name="vnf_instances")

"""On SQLite, the ``vnfd_id`` list index of ``vnf_instances`` (0008) also holds every column a
SOL003 list page reads (name, description, deployment and instantiate operation ids), so a
page filtered on ``vnfdId`` is read from the index alone, never from the table's rows (issue
19's E1: about a sixth of a page's server CPU). PostgreSQL keeps 0008's index: name and
description are unbounded text, and a btree entry there must fit a third of a page.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE_COLUMNS = [
    "vnfd_id",
    "created_at",
    "vnf_instance_id",
    "name",
    "description",
    "deployment_id",
    "instantiate_operation_id",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Its columns lead the new one: the same ranges, in the same order.
    op.drop_index("ix_vnf_instances_vnfd_id_created_at", table_name="vnf_instances")
    op.create_index("ix_vnf_instances_vnfd_id_page", "vnf_instances", _PAGE_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_vnf_instances_vnfd_id_page", table_name="vnf_instances")
    op.create_index(
        "ix_vnf_instances_vnfd_id_created_at",
        "vnf_instances",
        ["vnfd_id", "created_at", "vnf_instance_id"],
    )

"""On SQLite, the ``vnfd_id`` list index of ``vnf_instances`` (0010) holds what a SOL003 list
page's stamps read (deployment and instantiate operation ids, version) instead of the rendered
columns: a page of items the gateway already rendered is checked against each row's stamp
(netweave.store.vnf.StampPage) from the index alone; a page with items to render reads the
table's rows. PostgreSQL keeps 0008's index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAMP_COLUMNS = [
    "vnfd_id",
    "created_at",
    "vnf_instance_id",
    "deployment_id",
    "instantiate_operation_id",
    "version",
]
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
    op.drop_index("ix_vnf_instances_vnfd_id_page", table_name="vnf_instances")
    op.create_index("ix_vnf_instances_vnfd_id_stamp", "vnf_instances", _STAMP_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index("ix_vnf_instances_vnfd_id_stamp", table_name="vnf_instances")
    op.create_index("ix_vnf_instances_vnfd_id_page", "vnf_instances", _PAGE_COLUMNS)

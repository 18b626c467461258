"""ETSI subscriptions of more than one API: ``vnf_lcm_subscriptions.api`` says which interface a
row belongs to (``vnflcm``: SOL003 LCM, as every row so far; ``vnfpkgm``: SOL005 package
management), so both share one table, one outbox and one callback machinery.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vnf_lcm_subscriptions") as batch:
        batch.add_column(sa.Column("api", sa.String(16), nullable=False, server_default="vnflcm"))


def downgrade() -> None:
    op.execute("DELETE FROM vnf_lcm_subscriptions WHERE api <> 'vnflcm'")
    with op.batch_alter_table("vnf_lcm_subscriptions") as batch:
        batch.drop_column("api")

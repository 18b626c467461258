"""An index on ``packages (created_at, package_id)``: the SOL005 VNF package list is ordered by
creation (``netweave.store.vnfpkg``), so a page is an index range instead of a sort of the
whole catalogue.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_packages_created_at_package_id", "packages", ["created_at", "package_id"])


def downgrade() -> None:
    op.drop_index("ix_packages_created_at_package_id", table_name="packages")

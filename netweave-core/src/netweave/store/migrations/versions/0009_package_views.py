"""Each package's rendered view kept in its row: ``view_head`` and ``view_tail`` (its wire
JSON before and after the state value), ``view_key`` (the rendering it came from) and
``view_at`` (the row's ``updated_at`` when it was rendered). A list page is then one read of
stored bytes (``netweave.store.packages``). Existing rows start without a view: they are
rendered when read and filled in by a background pass.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Self-contained on purpose (no import of netweave.store.tables), as 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("packages", sa.Column("view_head", sa.LargeBinary(), nullable=True))
    op.add_column("packages", sa.Column("view_tail", sa.LargeBinary(), nullable=True))
    op.add_column("packages", sa.Column("view_key", sa.String(64), nullable=True))
    op.add_column("packages", sa.Column("view_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("packages") as batch:
        for column in ("view_at", "view_key", "view_tail", "view_head"):
            batch.drop_column(column)

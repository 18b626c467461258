"""Alembic environment for netweave's store.

Run only through ``netweave.store.migrations.run.upgrade`` (``SqlStore.migrate()``), which hands
over an open synchronous connection in ``config.attributes["connection"]``; there is no
alembic.ini and no offline mode.
"""

from __future__ import annotations

from alembic import context
from netweave.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - a usage error, not a runtime path
    raise RuntimeError("netweave migrations run through SqlStore.migrate(), with a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables for later revisions.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

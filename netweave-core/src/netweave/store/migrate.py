"""The schema: Alembic migrations shipped in ``migrations/`` (no alembic.ini), applied on
start, or the tables created at head on a new database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, insert, inspect, text
from sqlalchemy.engine import Connection

from netweave.errors import NetweaveError
from netweave.store.tables import metadata

#: The newest revision in ``migrations/versions``; a test checks it against Alembic's view.
HEAD_REVISION: Final = "0011"


#: Alembic's script directory, shipped inside the package (there is no alembic.ini).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def head_revision() -> str | None:
    """The newest revision shipped, as Alembic sees it (imports Alembic: slow, tests only)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "sqlite" and not inspect(connection).get_table_names():
        # A new SQLite file (every first start of the embedded default): the head schema at
        # once, without importing Alembic and replaying its steps. PostgreSQL keeps Alembic,
        # under the replicas' advisory lock. tests/store/test_store_migrations.py checks
        # that both give the same schema.
        _create_at_head(connection)
        return
    _alembic_upgrade(connection)


def _create_at_head(connection: Connection) -> None:
    metadata.create_all(connection)
    # Alembic's own bookkeeping table, as it creates it, stamped at head.
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(insert(version).values(version_num=HEAD_REVISION))


def _alembic_upgrade(connection: Connection) -> None:
    # Alembic is imported only when there is something to apply: it costs start-up time.
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, "head")
    except CommandError as error:
        # Typically a database migrated by a newer netweave (a revision this one lacks).
        raise NetweaveError(
            f"cannot migrate the database to revision {HEAD_REVISION}: {error}"
        ) from error


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return next(iter(versions), None)

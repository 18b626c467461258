"""Migrations: they build exactly tables.py, apply idempotently and concurrently."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from netweave.errors import NetweaveError
from netweave.store import migrate, records
from netweave.store.sql import HEAD_REVISION, SqlStore, create_store, head_revision
from netweave.store.tables import metadata
from sqlalchemy import DateTime, Index, MetaData, String, inspect
from sqlalchemy.engine import Connection
from support.postgres import POSTGRES_URL, Backend, drop_pg_schema, new_pg_schema


def _diff(connection: Connection, target: MetaData = metadata) -> list[Any]:
    dialect = connection.dialect.name

    def on_this_dialect(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
        # An index declared for one dialect only (``ddl_if``) is not expected on the other;
        # Alembic's comparison does not read ``ddl_if`` itself.
        ddl_if = getattr(obj, "_ddl_if", None)
        return reflected or ddl_if is None or ddl_if.dialect in (None, dialect)

    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_object": on_this_dialect,
        },
    )
    return list(compare_metadata(context, target))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_match_the_models(store: SqlStore) -> None:
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        # The comparison saw real tables (an empty database would "match" nothing).
        names = await conn.run_sync(_table_names)
    assert set(metadata.tables) <= names
    assert "alembic_version" in names


async def test_the_comparison_sees_differences(store: SqlStore) -> None:
    # Guard against a comparison that reports nothing whatever the schema: alter a copy.
    altered = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(altered)
    altered.tables["packages"].c.name.type = String(100)
    altered.tables["operations"].c.lease_expires_at.type = DateTime(timezone=False)
    Index("ix_extra", altered.tables["deployments"].c.revision)
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(_diff, altered)
    kinds = {entry[0] if isinstance(entry, tuple) else entry[0][0] for entry in diff}
    assert "add_index" in kinds
    assert "modify_type" in kinds


def test_head_constant_matches_the_shipped_revisions() -> None:
    # migrate() skips Alembic when the database is at HEAD_REVISION: keep them in step.
    assert head_revision() == HEAD_REVISION


async def test_migrate_is_idempotent(store: SqlStore) -> None:
    assert await store.current_revision() == HEAD_REVISION
    await store.migrate()
    await store.migrate()
    assert await store.current_revision() == HEAD_REVISION


async def test_fresh_database_has_no_revision_until_migrated(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name == "postgresql":
        # The backend fixture already checked that PostgreSQL answers.
        schema = await asyncio.to_thread(new_pg_schema)
        fresh = create_store(POSTGRES_URL, schema=schema)
    else:
        fresh = create_store(f"sqlite:///{tmp_path / 'fresh.db'}")
        schema = ""
    try:
        assert await fresh.current_revision() is None
        await fresh.migrate()
        assert await fresh.current_revision() == HEAD_REVISION
    finally:
        await fresh.close()
        if schema:
            await asyncio.to_thread(drop_pg_schema, schema)


async def test_concurrent_migrate_from_several_replicas(backend: Backend, tmp_path: Path) -> None:
    """Replicas starting together on an empty database: one migrates, the others wait."""
    if backend.name == "postgresql":
        # The backend fixture already checked that PostgreSQL answers.
        schema = await asyncio.to_thread(new_pg_schema)
        replicas = [create_store(POSTGRES_URL, schema=schema) for _ in range(4)]
    else:
        schema = ""
        replicas = [create_store(f"sqlite:///{tmp_path / 'fresh.db'}") for _ in range(4)]
    try:
        await asyncio.gather(*(r.migrate() for r in replicas))
        assert {await r.current_revision() for r in replicas} == {HEAD_REVISION}
        async with replicas[0].engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        for r in replicas:
            await r.close()
        if schema:
            await asyncio.to_thread(drop_pg_schema, schema)


@pytest.mark.parametrize(
    ("record", "table"),
    [
        (records.PackageRecord, "packages"),
        (records.DeploymentRecord, "deployments"),
        (records.OperationRecord, "operations"),
        (records.SubscriptionRecord, "subscriptions"),
        (records.IdempotencyRecord, "idempotency_keys"),
        (records.ApiTokenRecord, "api_tokens"),
    ],
)
def test_every_record_field_has_a_column(record: type[Any], table: str) -> None:
    # A package row also keeps the package's rendered view: the store's, not the record's.
    own = {"view_head", "view_tail", "view_key", "view_at"} if table == "packages" else set()
    assert {f.name for f in fields(record)} == set(metadata.tables[table].c.keys()) - own


def _downgrade_to_base(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_downgrade_removes_everything_and_upgrade_restores_it(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(_downgrade_to_base)
        left = await conn.run_sync(_table_names)
    assert left & set(metadata.tables) == set()
    assert await store.current_revision() is None
    await store.migrate()
    assert await store.current_revision() == HEAD_REVISION
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_database_from_a_newer_netweave_is_refused_clearly(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    try:
        with pytest.raises(NetweaveError, match="9999"):
            await store.migrate()
    finally:
        # PostgreSQL's schema lives for the whole session: leave it as found.
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql(
                f"UPDATE alembic_version SET version_num = '{HEAD_REVISION}'"
            )
    await store.migrate()


def _schema(connection: Connection) -> set[tuple[str, str, tuple[str, ...]]]:
    """SQLite's own description of the schema: every table and index with the words of its
    SQL (columns, types, keys) sorted, so the two builders' layout of the DDL may differ."""
    rows = connection.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
    ).all()
    words = str.maketrans("(),", "   ")
    return {
        (kind, name, tuple(sorted(str(ddl).translate(words).split()))) for kind, name, ddl in rows
    }


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_a_new_sqlite_file_gets_the_schema_alembic_builds(tmp_path: Path) -> None:
    """A new SQLite file is created at head directly (no Alembic at start-up): the same tables,
    indexes and constraints as the Alembic migrations, stamped at head for Alembic."""
    created = create_store(f"sqlite:///{tmp_path / 'created.db'}")
    migrated = create_store(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        await created.migrate()
        async with migrated.engine.begin() as conn:
            await conn.run_sync(migrate._alembic_upgrade)
        async with created.engine.connect() as a, migrated.engine.connect() as b:
            schema = await a.run_sync(_schema)
            assert len(schema) > len(metadata.tables)  # tables and their indexes
            assert schema == await b.run_sync(_schema)
            assert await a.run_sync(_revision) == await b.run_sync(_revision) == HEAD_REVISION
            assert await a.run_sync(_diff) == [] and await b.run_sync(_diff) == []
            assert set(metadata.tables) <= await a.run_sync(_table_names)
    finally:
        await created.close()
        await migrated.close()

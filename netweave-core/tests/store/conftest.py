"""Store fixtures: every test runs on SQLite (a temp file) and on real PostgreSQL.

PostgreSQL comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default: the project's server at
127.0.0.1:5432, database ``test``). Each test session works in its own fresh schema, dropped at
the end, so parallel runs on one server do not collide. Without a reachable server the
PostgreSQL cases skip, or fail when ``NETWEAVE_REQUIRE_BACKENDS=1`` (CI).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from netweave.store.sql import SqlStore, create_store
from netweave.store.tables import metadata
from netweave.testing import require_backend

POSTGRES_URL = os.environ.get(
    "NETWEAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


async def _pg_execute(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def new_pg_schema() -> str:
    """Create a fresh schema (raises OSError/asyncpg errors when PostgreSQL is not there)."""
    schema = f"nw_{secrets.token_hex(6)}"
    asyncio.run(_pg_execute(f"CREATE SCHEMA {schema}"))
    return schema


def drop_pg_schema(schema: str) -> None:
    asyncio.run(_pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@dataclass(frozen=True)
class Backend:
    name: str
    #: Builds a new store on the same database (another "replica").
    connect: Callable[[], SqlStore]


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str | None]:
    try:
        schema: str | None = new_pg_schema()
    except (OSError, asyncpg.PostgresError, TimeoutError):
        schema = None
    yield schema
    if schema is not None:
        drop_pg_schema(schema)


async def _migrated(url: str) -> None:
    store = create_store(url)
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "netweave.db"
    asyncio.run(_migrated(f"sqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_schema: str | None,
    sqlite_template: Path,
) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "netweave.db"
        # Closing the last connection checkpointed the WAL: the file alone is the database.
        shutil.copyfile(sqlite_template, path)
        return Backend("sqlite", lambda: create_store(f"sqlite:///{path}"))
    if pg_schema is None:
        require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
    return Backend("postgresql", lambda: create_store(POSTGRES_URL, schema=pg_schema))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SqlStore]:
    s = backend.connect()
    await s.migrate()
    if backend.name == "postgresql":
        # One schema per session: empty it so each test starts clean (DELETE is much
        # faster than TRUNCATE on tables this small).
        async with s.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    try:
        yield s
    finally:
        await s.close()

"""Store fixtures: every test runs on SQLite (a temp file) and on real PostgreSQL.

PostgreSQL comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default: the project's server at
127.0.0.1:5432, database ``test``). Each test session works in its own fresh schema, dropped at
the end, so parallel runs on one server do not collide. Without a reachable server the
PostgreSQL cases skip, or fail when ``NETWEAVE_REQUIRE_BACKENDS=1`` (CI).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from netweave.store.sql import SqlStore, create_store
from netweave.testing import require_backend
from support.postgres import POSTGRES_URL, Backend, empty_tables, temporary_schema

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str | None]:
    with temporary_schema("nw") as schema:
        yield schema


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
        await empty_tables(s)  # one schema per session
    try:
        yield s
    finally:
        await s.close()

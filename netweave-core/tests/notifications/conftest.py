"""Notification fixtures: a store on SQLite (temp file) and on real PostgreSQL (own schema).

PostgreSQL comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default 127.0.0.1:5432, database
``test``); without it the PostgreSQL cases skip, or fail under ``NETWEAVE_REQUIRE_BACKENDS=1``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from netweave.store.sql import SqlStore, create_store
from netweave.store.tables import metadata
from netweave.testing import require_backend
from notify_support import Db
from support.gateway import POSTGRES_URL


async def _pg(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def notify_pg_schema() -> Iterator[str | None]:
    schema = f"nw_notify_{secrets.token_hex(5)}"
    try:
        asyncio.run(_pg(f"CREATE SCHEMA {schema}"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        yield None
        return
    yield schema
    asyncio.run(_pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, notify_pg_schema: str | None) -> Db:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notify.db'}"
        return Db("sqlite", lambda: create_store(url))
    if notify_pg_schema is None:
        require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = notify_pg_schema
    return Db("postgresql", lambda: create_store(POSTGRES_URL, schema=schema))


@pytest.fixture
async def store(db: Db) -> AsyncIterator[SqlStore]:
    s = db.connect()
    await s.migrate()
    if db.name == "postgresql":
        async with s.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    try:
        yield s
    finally:
        await s.close()

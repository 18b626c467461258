"""Notification fixtures: a store on SQLite (temp file) and on real PostgreSQL (own schema).

PostgreSQL comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default 127.0.0.1:5432, database
``test``); without it the PostgreSQL cases skip, or fail under ``NETWEAVE_REQUIRE_BACKENDS=1``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from netweave.store.sql import SqlStore, create_store
from netweave.testing import require_backend
from support.postgres import POSTGRES_URL, Backend, empty_tables, temporary_schema


@pytest.fixture(scope="session")
def notify_pg_schema() -> Iterator[str | None]:
    with temporary_schema("nw_notify") as schema:
        yield schema


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, notify_pg_schema: str | None) -> Backend:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notify.db'}"
        return Backend("sqlite", lambda: create_store(url))
    if notify_pg_schema is None:
        require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = notify_pg_schema
    return Backend("postgresql", lambda: create_store(POSTGRES_URL, schema=schema))


@pytest.fixture
async def store(db: Backend) -> AsyncIterator[SqlStore]:
    s = db.connect()
    await s.migrate()
    if db.name == "postgresql":
        await empty_tables(s)
    try:
        yield s
    finally:
        await s.close()

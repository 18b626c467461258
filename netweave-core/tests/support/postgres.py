"""The real PostgreSQL for core's tests: throw-away databases and schemas on one server.

The server comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, trust auth,
database ``test``). Each user works in its own database or schema, dropped afterwards, so
parallel runs on one server do not collide. Unreachable: ``None`` (the caller skips, or fails
under ``NETWEAVE_REQUIRE_BACKENDS=1``) or, with ``required=True``, ``require_backend`` at once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from netweave.store.sql import SqlStore
from netweave.store.tables import metadata
from netweave.testing.postgres import (
    POSTGRES_URL,
    UNREACHABLE,
    pg_execute,
    temporary_database,
)


@dataclass(frozen=True)
class Backend:
    """A database a parametrised test runs on: ``sqlite`` or ``postgresql``."""

    name: str
    #: Builds a new store on the same database (another "replica").
    connect: Callable[[], SqlStore]


def new_pg_schema() -> str:
    """Create a fresh schema (raises one of ``UNREACHABLE`` when PostgreSQL is not there).
    Synchronous: from a running event loop call it through ``asyncio.to_thread``."""
    schema = f"nw_{secrets.token_hex(6)}"
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    return schema


def drop_pg_schema(schema: str) -> None:
    asyncio.run(pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@contextmanager
def temporary_schema(prefix: str) -> Iterator[str | None]:
    """A fresh schema in the ``test`` database, dropped after; ``None`` when unreachable."""
    schema = f"{prefix}_{secrets.token_hex(5)}"
    try:
        asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    except UNREACHABLE:
        yield None
        return
    try:
        yield schema
    finally:
        drop_pg_schema(schema)


async def empty_tables(store: SqlStore) -> None:
    """Delete every row, children first: a schema shared by a session's tests starts each
    test clean (DELETE is much faster than TRUNCATE on tables this small)."""
    async with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())


__all__ = [
    "POSTGRES_URL",
    "UNREACHABLE",
    "Backend",
    "drop_pg_schema",
    "empty_tables",
    "new_pg_schema",
    "pg_execute",
    "temporary_database",
    "temporary_schema",
]

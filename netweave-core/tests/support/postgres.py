"""The real PostgreSQL for core's tests: throw-away databases and schemas on one server.

The server comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, trust auth,
database ``test``). Each user works in its own database or schema, dropped afterwards, so
parallel runs on one server do not collide. Unreachable: ``None`` (the caller skips, or fails
under ``NETWEAVE_REQUIRE_BACKENDS=1``) or, with ``required=True``, ``require_backend`` at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
from netweave.store.sql import SqlStore
from netweave.store.tables import metadata
from netweave.testing import require_backend
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "NETWEAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: What connecting to an absent or refusing server raises.
UNREACHABLE = (OSError, asyncpg.PostgresError, TimeoutError)


@dataclass(frozen=True)
class Backend:
    """A database a parametrised test runs on: ``sqlite`` or ``postgresql``."""

    name: str
    #: Builds a new store on the same database (another "replica").
    connect: Callable[[], SqlStore]


async def pg_execute(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def new_pg_schema() -> str:
    """Create a fresh schema (raises one of ``UNREACHABLE`` when PostgreSQL is not there).
    Synchronous: from a running event loop call it through ``asyncio.to_thread``."""
    schema = f"nw_{secrets.token_hex(6)}"
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    return schema


def drop_pg_schema(schema: str) -> None:
    asyncio.run(pg_execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@contextmanager
def temporary_database(prefix: str, *, required: bool = True) -> Iterator[str | None]:
    """A fresh database (its plain ``postgresql://`` URL), dropped with its connections after."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    try:
        asyncio.run(pg_execute(f"CREATE DATABASE {name}"))
    except UNREACHABLE:
        if required:
            require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
        yield None
        return
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(pg_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


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

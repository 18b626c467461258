"""The real PostgreSQL for tests and benches: throw-away databases on one server.

The server comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, trust auth,
database ``test``). Each user works in its own database, dropped afterwards with its
connections, so parallel runs on one server do not collide.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from netweave.testing import require_backend

POSTGRES_URL = os.environ.get(
    "NETWEAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
#: What connecting to an absent or refusing server raises.
UNREACHABLE = (OSError, asyncpg.PostgresError, TimeoutError)


async def pg_execute(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def temporary_database(prefix: str, *, required: bool = True) -> Iterator[str | None]:
    """A fresh database (its plain ``postgresql://`` URL), dropped with its connections after.

    Unreachable: ``require_backend`` (a skip, or a failure under
    ``NETWEAVE_REQUIRE_BACKENDS=1``) or, with ``required=False``, ``None``.
    Synchronous: from a running event loop call it through a thread.
    """
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


__all__ = ["POSTGRES_URL", "UNREACHABLE", "pg_execute", "temporary_database"]

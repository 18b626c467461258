"""``SqlStore``: the :class:`~netweave.store.interface.Store` on SQLAlchemy 2.

SQLite for one process (SQLAlchemy's synchronous engine called inline on the event loop: see
``sqlite_inline``), PostgreSQL (SQLAlchemy async, asyncpg) for several replicas. Queries use
Core on the declarative tables (no ORM identity map: rows become plain record dataclasses).

The store is assembled here from one repository per aggregate (``packages``, ``deployments``,
``operations``, ``reconcile_shards``, ``subscriptions``, ``idempotency``, ``api_tokens``, and
the ETSI faces' ``vnf`` and ``vnfpkg``), each a mixin on ``engine.SqlBase`` (connections,
transactions, the SQLite write lock, error translation). The outbox is ``outbox``; the schema
and its migrations are ``migrate``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from netweave.errors import InvalidInput
from netweave.store.api_tokens import ApiTokenRows
from netweave.store.deployments import DeploymentRows
from netweave.store.engine import (
    _SCHEMA_NAME,
    CONNECT_TIMEOUT_S,
    PING_TIMEOUT_S,
    _engine_url,
    _sqlite_engine,
    _translate,
)
from netweave.store.idempotency import IdempotencyRows
from netweave.store.interface import MAX_PAGE_LIMIT, urgent_writes
from netweave.store.migrate import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    _current_revision,
    _upgrade_to_head,
    head_revision,
)
from netweave.store.operations import OperationRows
from netweave.store.packages import PackageRows
from netweave.store.reconcile_shards import ReconcileShardRows
from netweave.store.subscriptions import SubscriptionRows
from netweave.store.vnf import VnfRows
from netweave.store.vnfpkg import VnfPackageRows

if TYPE_CHECKING:
    from netweave.store.outbox import OutboxStore


class SqlStore(
    PackageRows,
    DeploymentRows,
    OperationRows,
    ReconcileShardRows,
    SubscriptionRows,
    IdempotencyRows,
    ApiTokenRows,
    VnfRows,
    VnfPackageRows,
):
    """The gateway's store on one SQLAlchemy async engine (see the module docstring): one
    repository per aggregate, each a mixin on :class:`~netweave.store.engine.SqlBase`."""

    async def migrate(self) -> None:
        with _translate("migration"):
            # Fast path for every start after the first: already at head, no lock needed
            # (revisions only move forward).
            async with self._own(write=False) as conn:
                if await conn.run_sync(_current_revision) == HEAD_REVISION:
                    return
            async with self._own(write=True) as conn:
                if self.dialect == "postgresql":
                    # Replicas starting together queue here; the later ones find head applied.
                    # Keyed by schema, so separate schemas in one database do not wait.
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:key || current_schema()))"),
                        {"key": "netweave-migrate:"},
                    )
                await conn.run_sync(_upgrade_to_head)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S), self._own(write=False) as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self._stop_backfill()
        self._close_reader()
        await self._engine.dispose()

    def outbox(self) -> OutboxStore:
        from netweave.store.outbox import OutboxStore  # here: that module imports this one

        return OutboxStore(self)

    async def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""
        with _translate("reading the schema revision"):
            async with self._conn(write=False) as conn:
                return await conn.run_sync(_current_revision)


def create_store(url: str, *, echo: bool = False, schema: str | None = None) -> SqlStore:
    """A store for ``url`` (``sqlite:///path/netweave.db`` or ``postgresql://…``).

    ``schema`` (PostgreSQL only) puts every table in that schema (it must exist), via the
    connections' ``search_path``.
    """
    engine_url = _engine_url(url)
    if engine_url.get_backend_name() == "sqlite":
        if schema is not None:
            raise InvalidInput(
                "schema is only supported on PostgreSQL", details={"field": "schema"}
            )
        return SqlStore(_sqlite_engine(engine_url, echo=echo))
    server_settings = {"application_name": "netweave"}
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise InvalidInput(f"invalid schema name {schema!r}", details={"field": "schema"})
        server_settings["search_path"] = schema
    return SqlStore(
        create_async_engine(
            engine_url,
            echo=echo,
            # Enough connections for a few dozen concurrent requests per replica.
            pool_size=10,
            max_overflow=20,
            connect_args={"timeout": CONNECT_TIMEOUT_S, "server_settings": server_settings},
        )
    )


__all__ = [
    "HEAD_REVISION",
    "MAX_PAGE_LIMIT",
    "MIGRATIONS_DIR",
    "SqlStore",
    "create_store",
    "head_revision",
    "urgent_writes",
]

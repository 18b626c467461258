"""transaction(): calls inside share one transaction, all or nothing; SQLite writers queue."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from netweave.errors import AlreadyExists, Conflict
from netweave.models import OperationState
from netweave.store import sqlite_inline
from netweave.store.outbox import OutboxStore
from netweave.store.sql import SqlStore, create_store
from netweave.store.tables import DeliveryRow, OutboxRow
from sqlalchemy import func, select
from store_factories import T0, deployment, operation, package
from support.postgres import Backend


class Boom(Exception):
    pass


async def _record_event(store: SqlStore, event_id: str) -> None:
    # The notification outbox (netweave.store.outbox) writes through the same transaction.
    await OutboxStore(store).record_event(
        event_id=event_id,
        event_type="DeploymentCreated",
        payload={"deploymentId": "dep-web"},
        occurred_at=T0,
        ordering_key="deployment:dep-web",
        subscription_ids=["sub-1"],
        due_at=T0,
        now=T0,
    )


async def _outbox_rows(store: SqlStore) -> tuple[int, int]:
    """(events, deliveries) stored."""
    async with store.engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(OutboxRow))).scalar_one()
        deliveries = (
            await conn.execute(select(func.count()).select_from(DeliveryRow))
        ).scalar_one()
    return int(events), int(deliveries)


async def test_commit_together(store: SqlStore) -> None:
    async with store.transaction():
        await store.add_deployment(deployment())
        await store.add_operation(operation())
        # Reads inside the block see the block's own writes.
        assert await store.get_deployment("dep-web") is not None
        assert (await store.list_operations()).total == 1
        await _record_event(store, "evt-1")
    assert await store.get_deployment("dep-web") is not None
    assert await store.get_operation("op-00000") is not None
    assert await _outbox_rows(store) == (1, 1)


async def test_error_rolls_everything_back(store: SqlStore) -> None:
    with pytest.raises(Boom):
        async with store.transaction():
            await store.add_deployment(deployment())
            await store.add_operation(operation())
            await _record_event(store, "evt-1")
            raise Boom
    assert await store.get_deployment("dep-web") is None
    assert await store.get_operation("op-00000") is None
    assert await _outbox_rows(store) == (0, 0)


async def test_store_error_inside_rolls_back(store: SqlStore) -> None:
    await store.add_package(package())
    with pytest.raises(AlreadyExists):
        async with store.transaction():
            await store.add_deployment(deployment())
            await store.add_package(package())  # duplicate: the whole block fails
    assert await store.get_deployment("dep-web") is None


async def test_handled_error_keeps_transaction_usable(store: SqlStore) -> None:
    # A unique violation the caller handles inside the block must not poison the rest
    # (PostgreSQL aborts a transaction after an error unless it ran in a savepoint).
    await store.add_package(package())
    async with store.transaction():
        await store.add_deployment(deployment())
        with pytest.raises(AlreadyExists):
            await store.add_package(package())
        await store.add_operation(operation())
        with pytest.raises(Conflict):
            await store.update_operation("op-00000", expected_state=OperationState.PROCESSING)
        await store.update_operation("op-00000", attempts=1)
    assert await store.get_deployment("dep-web") is not None
    assert (await store.get_operation("op-00000")).attempts == 1  # type: ignore[union-attr]


async def test_nested_blocks_join_the_outer_one(store: SqlStore) -> None:
    with pytest.raises(Boom):
        async with store.transaction():
            async with store.transaction():
                await store.add_deployment(deployment())
            await store.add_operation(operation())
            raise Boom
    assert await store.get_deployment("dep-web") is None
    assert await store.get_operation("op-00000") is None


async def test_uncommitted_writes_invisible_to_other_replica(
    backend: Backend, store: SqlStore
) -> None:
    other = backend.connect()
    try:
        async with store.transaction():
            await store.add_deployment(deployment())
            assert await other.get_deployment("dep-web") is None
        assert await other.get_deployment("dep-web") is not None
    finally:
        await other.close()


async def test_concurrent_writers_do_not_fail(backend: Backend, store: SqlStore) -> None:
    """Many concurrent writes from two stores on one database: no 'database is locked'."""
    other = backend.connect()

    async def add(s: SqlStore, n: int) -> None:
        async with s.transaction():
            await s.add_package(package(f"p{n}", "1.0.0"))
            await s.add_deployment(deployment(f"d{n}", package_id=f"p{n}-1.0.0"))

    try:
        await asyncio.gather(*(add(store if n % 2 else other, n) for n in range(60)))
    finally:
        await other.close()
    assert (await store.list_packages()).total == 60
    assert (await store.list_deployments()).total == 60


async def test_tasks_spawned_in_a_block_use_their_own_transactions(store: SqlStore) -> None:
    go = asyncio.Event()

    async def after_the_block() -> None:
        await go.wait()
        await store.add_operation(operation())

    async with store.transaction():
        await store.add_deployment(deployment())
        # A spawned task is outside the block's transaction: it cannot see its writes yet.
        assert await asyncio.create_task(store.get_deployment("dep-web")) is None
        later = asyncio.create_task(after_the_block())
    # The task outlives the block: it must not reuse the block's closed connection.
    go.set()
    await asyncio.wait_for(later, 10)
    assert await store.get_operation("op-00000") is not None
    assert await store.get_deployment("dep-web") is not None


async def test_in_memory_sqlite_under_concurrency() -> None:
    # One shared connection: concurrent readers and writers must queue, not interleave.
    store = create_store("sqlite://")
    try:
        await store.migrate()
        await asyncio.gather(
            *(store.add_package(package(f"p{n}")) for n in range(20)),
            *(store.list_packages() for _ in range(20)),
            *(store.ping() for _ in range(5)),
        )
        assert (await store.list_packages()).total == 20
        with pytest.raises(Boom):
            async with store.transaction():
                await store.add_deployment(deployment())
                raise Boom
        assert await store.get_deployment("dep-web") is None
    finally:
        await store.close()


async def test_a_point_read_outside_a_transaction_takes_none_and_one_inside_sees_its_writes(
    backend: Backend, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a read by key outside a transaction runs on the kept reader (no BEGIN or
    COMMIT around one statement); inside one it joins it and sees its uncommitted writes."""
    begun: list[str] = []
    real_begin = sqlite_inline._begin

    async def counting(driver: sqlite3.Connection, statement: str) -> None:
        begun.append(statement)
        await real_begin(driver, statement)

    monkeypatch.setattr(sqlite_inline, "_begin", counting)
    await store.add_deployment(deployment("web"))
    begun.clear()
    got = await store.get_deployment("dep-web")
    assert got is not None and got.name == "web"
    assert await store.get_deployment("dep-none") is None
    if backend.name == "sqlite":
        assert begun == []
    async with store.transaction():
        await store.add_deployment(deployment("api"))
        inside = await store.get_deployment("dep-api")
        assert inside is not None and inside.name == "api"
    assert (await store.get_deployment("dep-api")) is not None

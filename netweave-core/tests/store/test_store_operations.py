"""Operations: CRUD, compare-and-set, leases and concurrent claiming."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from netweave.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from netweave.models import OperationState, OperationType
from netweave.store import sqlite_inline
from netweave.store.sql import SqlStore
from store_factories import T0, operation
from support.postgres import Backend


async def test_roundtrip_and_list(store: SqlStore) -> None:
    record = operation(
        deployment_id="dep-a",
        params={"values": {"a": 1}},
        error={"type": "urn:x", "status": 502, "title": "boom"},
        attempts=2,
        is_cancel_pending=True,
    )
    await store.add_operation(record)
    assert await store.get_operation("op-00000") == record
    with pytest.raises(AlreadyExists, match="operation_id='op-00000'"):
        await store.add_operation(replace(record, deployment_id="dep-z"))
    for n in range(1, 8):
        await store.add_operation(
            operation(
                n,
                deployment_id="dep-b" if n % 2 else "dep-web",
                state=OperationState.COMPLETED
                if n > 4
                else OperationState.FAILED
                if n > 2
                else OperationState.PROCESSING,
            )
        )
    page = await store.list_operations(limit=3, offset=1)
    assert page.total == 8
    assert [o.operation_id for o in page.items] == ["op-00001", "op-00002", "op-00003"]
    assert (await store.list_operations(deployment_id="dep-b")).total == 4
    done = await store.list_operations(state=OperationState.COMPLETED, deployment_id="dep-b")
    assert [o.operation_id for o in done.items] == ["op-00005", "op-00007"]


async def test_update_sets_state_entered_time_only_on_change(store: SqlStore) -> None:
    await store.add_operation(operation())
    moved = await store.update_operation("op-00000", state=OperationState.PROCESSING)
    assert moved.state is OperationState.PROCESSING
    assert moved.state_entered_time > T0
    same = await store.update_operation("op-00000", state=OperationState.PROCESSING, attempts=1)
    assert same.state_entered_time == moved.state_entered_time
    assert same.attempts == 1
    explicit = datetime(2027, 1, 1, tzinfo=UTC)
    again = await store.update_operation(
        "op-00000", state=OperationState.FAILED_TEMP, state_entered_time=explicit
    )
    assert again.state_entered_time == explicit
    assert await store.get_operation("op-00000") == again


async def test_compare_and_set(store: SqlStore) -> None:
    await store.add_operation(operation(state=OperationState.FAILED_TEMP))
    with pytest.raises(Conflict) as caught:
        await store.update_operation(
            "op-00000", expected_state=OperationState.PROCESSING, state=OperationState.FAILED
        )
    assert caught.value.details["state"] == "FAILED_TEMP"
    assert (await store.get_operation("op-00000")).state is OperationState.FAILED_TEMP  # type: ignore[union-attr]
    retried = await store.update_operation(
        "op-00000",
        expected_state=OperationState.FAILED_TEMP,
        state=OperationState.PROCESSING,
        error=None,
    )
    assert retried.state is OperationState.PROCESSING
    # CAS with no other change just checks the state.
    checked = await store.update_operation("op-00000", expected_state=OperationState.PROCESSING)
    assert checked == retried
    with pytest.raises(Conflict):
        await store.update_operation("op-00000", expected_state=OperationState.STARTING)
    with pytest.raises(NotFound):
        await store.update_operation(
            "op-missing", expected_state=OperationState.STARTING, attempts=1
        )
    with pytest.raises(NotFound):
        await store.update_operation("op-missing", attempts=1)
    with pytest.raises(InvalidInput):
        await store.update_operation("op-00000", state="SLEEPING")
    with pytest.raises(InvalidInput):
        await store.update_operation("op-00000", lease_until=1)


async def test_racing_cas_only_one_wins(backend: Backend, store: SqlStore) -> None:
    # Two "replicas" cancel-and-retry the same operation at once: exactly one succeeds.
    other = backend.connect()
    try:
        await store.add_operation(operation(state=OperationState.FAILED_TEMP))

        async def move(s: SqlStore, to: OperationState) -> OperationState | None:
            try:
                await s.update_operation(
                    "op-00000", expected_state=OperationState.FAILED_TEMP, state=to
                )
            except Conflict:
                return None
            return to

        results = await asyncio.gather(
            move(store, OperationState.PROCESSING), move(other, OperationState.FAILED)
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert (await store.get_operation("op-00000")).state is winners[0]  # type: ignore[union-attr]
    finally:
        await other.close()


async def test_one_unfinished_operation_per_deployment(store: SqlStore) -> None:
    await store.add_operation(operation(0, state=OperationState.FAILED_TEMP))
    with pytest.raises(AlreadyExists, match="dep-web' already has an unfinished operation"):
        await store.add_operation(operation(1))
    # Other deployments are independent.
    await store.add_operation(operation(2, deployment_id="dep-other"))
    await store.update_operation("op-00000", state=OperationState.FAILED)
    await store.add_operation(operation(1))
    await store.update_operation("op-00001", state=OperationState.COMPLETED)
    await store.add_operation(operation(3, state=OperationState.PROCESSING))
    finished = await store.list_operations(deployment_id="dep-web")
    assert [o.state for o in finished.items] == [
        OperationState.FAILED,
        OperationState.COMPLETED,
        OperationState.PROCESSING,
    ]


def test_unfinished_condition_matches_the_terminal_states() -> None:
    from netweave.models.operations import TERMINAL_STATES
    from netweave.store.tables import UNFINISHED_OPERATION_SQL

    listed = UNFINISHED_OPERATION_SQL.split("(", 1)[1].rstrip(")").replace("'", "").split(", ")
    assert set(listed) == {s.value for s in TERMINAL_STATES}


async def test_racing_replicas_start_one_operation(backend: Backend, store: SqlStore) -> None:
    # Both check "no active operation" and insert at once: the database lets one through.
    others = [backend.connect() for _ in range(3)]

    async def start(s: SqlStore, n: int) -> bool:
        try:
            async with s.transaction():
                if await s.active_operation_for("dep-web") is not None:
                    return False
                await s.add_operation(operation(n))
        except AlreadyExists:
            return False
        return True

    try:
        results = await asyncio.gather(*(start(s, n) for n, s in enumerate([store, *others])))
    finally:
        for s in others:
            await s.close()
    assert results.count(True) == 1
    assert (await store.list_operations(deployment_id="dep-web")).total == 1


async def test_active_operation_for(store: SqlStore) -> None:
    assert await store.active_operation_for("dep-web") is None
    await store.add_operation(operation(0, state=OperationState.COMPLETED))
    await store.add_operation(operation(1, state=OperationState.FAILED))
    await store.add_operation(operation(2, state=OperationState.ROLLED_BACK))
    await store.add_operation(operation(3, deployment_id="dep-other"))
    assert await store.active_operation_for("dep-web") is None
    await store.add_operation(operation(4, state=OperationState.FAILED_TEMP))
    active = await store.active_operation_for("dep-web")
    assert active is not None
    assert active.operation_id == "op-00004"


async def test_claim_renew_release_and_expiry(store: SqlStore) -> None:
    now = T0 + timedelta(hours=1)
    await store.add_operation(operation(0, deployment_id="d0"))
    await store.add_operation(operation(1, deployment_id="d1", state=OperationState.PROCESSING))
    await store.add_operation(operation(2, deployment_id="d2", state=OperationState.FAILED_TEMP))
    await store.add_operation(operation(3, deployment_id="d3", state=OperationState.COMPLETED))
    await store.add_operation(operation(4, deployment_id="d4"))

    first = await store.claim_operations(owner="a", lease_seconds=30, limit=2, now=now)
    assert [o.operation_id for o in first] == ["op-00000", "op-00001"]
    assert all(o.lease_owner == "a" for o in first)
    assert all(o.lease_expires_at == now + timedelta(seconds=30) for o in first)
    rest = await store.claim_operations(owner="b", lease_seconds=30, limit=10, now=now)
    assert [o.operation_id for o in rest] == ["op-00004"]
    assert await store.claim_operations(owner="c", lease_seconds=30, limit=10, now=now) == []

    # Renewing works for the holder only.
    assert await store.renew_lease("op-00000", owner="a", lease_seconds=60, now=now)
    assert not await store.renew_lease("op-00000", owner="b", lease_seconds=60, now=now)
    assert not await store.renew_lease("op-missing", owner="a", lease_seconds=60, now=now)

    # After 45 s, op-00001 (30 s lease) and op-00004 expired; op-00000 was renewed to 60 s.
    later = now + timedelta(seconds=45)
    taken = await store.claim_operations(owner="c", lease_seconds=30, limit=10, now=later)
    assert [o.operation_id for o in taken] == ["op-00001", "op-00004"]
    # The former holder cannot renew what was taken over.
    assert not await store.renew_lease("op-00004", owner="b", lease_seconds=30, now=later)

    # Releasing by a non-holder does nothing; by the holder frees it at once.
    await store.release_lease("op-00000", owner="c")
    assert (await store.get_operation("op-00000")).lease_owner == "a"  # type: ignore[union-attr]
    await store.release_lease("op-00000", owner="a")
    released = await store.get_operation("op-00000")
    assert released is not None
    assert released.lease_owner is None
    assert released.lease_expires_at is None
    again = await store.claim_operations(owner="d", lease_seconds=30, limit=10, now=later)
    assert [o.operation_id for o in again] == ["op-00000"]
    assert await store.claim_operations(owner="d", lease_seconds=30, limit=0, now=later) == []


async def test_claim_validates_arguments(store: SqlStore) -> None:
    with pytest.raises(InvalidInput):
        await store.claim_operations(owner="a", lease_seconds=30, limit=-1, now=T0)
    with pytest.raises(InvalidInput):
        await store.claim_operations(owner="", lease_seconds=30, limit=1, now=T0)
    with pytest.raises(InvalidInput):
        await store.claim_operations(owner="a", lease_seconds=-1, limit=1, now=T0)
    with pytest.raises(InvalidInput):
        await store.claim_operations(
            owner="a",
            lease_seconds=30,
            limit=1,
            now=datetime(2026, 1, 1),
        )


async def test_concurrent_claimers_each_operation_once(backend: Backend, store: SqlStore) -> None:
    """4 replicas claim 200 operations in batches of 7: each is claimed exactly once."""
    total = 200
    async with store.transaction():
        for n in range(total):
            await store.add_operation(
                operation(n, operation_type=OperationType.SCALE, deployment_id=f"dep-{n}")
            )
    replicas = [backend.connect() for _ in range(4)]
    now = T0 + timedelta(days=1)

    async def worker(index: int, s: SqlStore) -> list[str]:
        got: list[str] = []
        for _ in range(total):  # bounded: each round claims at least one or stops
            batch = await s.claim_operations(
                owner=f"replica-{index}", lease_seconds=300, limit=7, now=now
            )
            if not batch:
                break
            got.extend(o.operation_id for o in batch)
            await asyncio.sleep(0)
        return got

    try:
        results = await asyncio.gather(*(worker(i, s) for i, s in enumerate(replicas)))
    finally:
        for s in replicas:
            await s.close()
    claimed = [op_id for result in results for op_id in result]
    assert len(claimed) == total
    assert len(set(claimed)) == total
    # Each claim was recorded by its claimer.
    page = await store.list_operations(limit=1000)
    owners = {o.operation_id: o.lease_owner for o in page.items}
    for index, result in enumerate(results):
        assert all(owners[op_id] == f"replica-{index}" for op_id in result)
    if backend.name == "postgresql":
        # SKIP LOCKED lets replicas work side by side; with SQLite's single writer the
        # interleaving depends on scheduling, so only PostgreSQL must spread the work.
        assert sum(1 for result in results if result) >= 2


async def test_claim_skips_rows_another_claimer_holds(backend: Backend, store: SqlStore) -> None:
    """PostgreSQL: a row another replica has locked is skipped, not waited for.

    SQLite has no row locks: a claim waits for another process's write transaction (busy
    timeout) instead of failing with "database is locked", then claims everything.
    """
    await store.add_operation(operation(0, deployment_id="d0"))
    await store.add_operation(operation(1, deployment_id="d1"))
    async with store.engine.connect() as other:
        if backend.name == "postgresql":
            async with other.begin():
                # Another replica is mid-claim on op-00000 (row locked, lease not written).
                await other.exec_driver_sql(
                    "SELECT operation_id FROM operations WHERE operation_id = 'op-00000' FOR UPDATE"
                )
                # Without SKIP LOCKED this would wait for the other transaction.
                claimed = await asyncio.wait_for(
                    store.claim_operations(owner="me", lease_seconds=30, limit=10, now=T0), 10
                )
                assert [o.operation_id for o in claimed] == ["op-00001"]
            after = await store.claim_operations(owner="me", lease_seconds=30, limit=10, now=T0)
            assert [o.operation_id for o in after] == ["op-00000"]
        else:
            other.info[sqlite_inline.BEGIN_KEY] = "BEGIN IMMEDIATE"  # hold SQLite's write lock
            async with other.begin():
                claim = asyncio.create_task(
                    store.claim_operations(owner="me", lease_seconds=30, limit=10, now=T0)
                )
                await asyncio.sleep(0.3)
                assert not claim.done()
            claimed = await asyncio.wait_for(claim, 10)
            assert [o.operation_id for o in claimed] == ["op-00000", "op-00001"]


async def test_busy_deployments_names_those_an_unfinished_operation_holds(store: SqlStore) -> None:
    await store.add_operation(operation(0, deployment_id="d0", state=OperationState.COMPLETED))
    await store.add_operation(operation(1, deployment_id="d1", state=OperationState.FAILED_TEMP))
    await store.add_operation(operation(2, deployment_id="d2", state=OperationState.PROCESSING))
    await store.add_operation(operation(3, deployment_id="d3", state=OperationState.ROLLED_BACK))
    busy = await store.busy_deployments(["d0", "d1", "d2", "d3", "d4"])
    assert busy == {"d1", "d2"}
    assert busy == {
        d for d in ("d0", "d1", "d2", "d3", "d4") if await store.active_operation_for(d)
    }
    assert await store.busy_deployments([]) == set()

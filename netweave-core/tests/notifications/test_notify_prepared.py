"""The subscription list read before a change's transaction (``NotificationRecorder.prepare``)
is used only while this process wrote no subscription since: a subscription committed before
the change always gets its events, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from netweave.notifications import NotificationRecorder
from netweave.notifications.events import DeploymentEvent
from netweave.store import Page, SubscriptionRecord
from netweave.store.outbox import OutboxStore
from netweave.store.sql import SqlStore
from support.postgres import Backend


def subscription(name: str) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=name,
        callback_uri="http://127.0.0.1:9/cb",
        filter={},
        created_at=datetime.now(UTC),
        authentication=None,
    )


def event(deployment_id: str) -> DeploymentEvent:
    return DeploymentEvent(
        "DeploymentCreated", {"deploymentId": deployment_id, "name": deployment_id}
    )


async def test_prepared_list_is_read_again_after_a_subscription_write(store: SqlStore) -> None:
    outbox = OutboxStore(store)
    recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)

    prepared = await recorder.prepare()
    assert prepared is not None and prepared.subscriptions == []
    # Committed after the read, before the change: the stale list must not be used.
    await store.add_subscription(subscription("late"))
    async with store.transaction():
        [event_id] = await recorder.record_events([event("d1")], prepared)
    assert event_id is not None
    assert {d["subscription_id"] for d in await outbox.deliveries()} == {"late"}

    # Still current: used as read (and gives the same answer as reading again).
    prepared = await recorder.prepare()
    assert prepared is not None and [s.subscription_id for s in prepared.subscriptions] == ["late"]
    async with store.transaction():
        [event_id] = await recorder.record_events([event("d2")], prepared)
    assert event_id is not None

    # A deletion after the read: no delivery for the deleted subscription.
    prepared = await recorder.prepare()
    await store.delete_subscription("late")
    async with store.transaction():
        [event_id] = await recorder.record_events([event("d3")], prepared)
    assert event_id is None
    assert len(await outbox.deliveries()) == 2


async def test_no_prepared_list_while_a_subscription_write_is_in_flight(store: SqlStore) -> None:
    recorder = NotificationRecorder(store, OutboxStore(store), settle_seconds=0.0)
    with store._tracking(store._subscription_writes):
        assert await recorder.prepare() is None
    assert await recorder.prepare() is not None


async def _list_reads(store: SqlStore, recorder: NotificationRecorder, deployment: str) -> int:
    """How many subscription-list reads one recorded change makes."""
    reads = 0
    original = store.list_subscriptions

    async def counting(**kwargs: int) -> Page:
        nonlocal reads
        reads += 1
        return await original(**kwargs)

    store.list_subscriptions = counting  # type: ignore[method-assign]
    try:
        prepared = await recorder.prepare()
        async with store.transaction():
            await recorder.record_events([event(deployment)], prepared)
    finally:
        del store.list_subscriptions
    return reads


async def test_sqlite_keeps_the_list_until_this_process_writes_one(
    db: Backend, store: SqlStore
) -> None:
    """SQLite serves one process: the list is read once and kept until a subscription write;
    PostgreSQL (other replicas may write) reads it for every change."""
    outbox = OutboxStore(store)
    recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)
    await store.add_subscription(subscription("first"))
    assert await _list_reads(store, recorder, "d1") == 1
    kept = 0 if db.name == "sqlite" else 1
    assert await _list_reads(store, recorder, "d2") == kept
    await store.add_subscription(subscription("second"))
    assert await _list_reads(store, recorder, "d3") == 1
    deliveries = [d["subscription_id"] for d in await outbox.deliveries()]
    assert sorted(deliveries) == ["first", "first", "first", "second"]


async def test_a_subscription_written_in_a_longer_transaction_is_not_missed(
    store: SqlStore,
) -> None:
    """A change recorded while a subscription's transaction is still open cannot see it; the
    list it read then must not be kept, so the next change after the commit sees it."""
    outbox = OutboxStore(store)
    recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)
    async with store.transaction():
        await store.add_subscription(subscription("pending"))
        # Another task (its own transaction, which cannot see the uncommitted row) reads.
        assert store.subscription_writes()[0] != store.subscription_writes()[1]
        other = asyncio.create_task(recorder._subscriptions())
        assert await asyncio.wait_for(other, 30) == []
    assert store.subscription_writes()[0] == store.subscription_writes()[1]
    async with store.transaction():
        [event_id] = await recorder.record_events([event("d2")])
    assert event_id is not None
    assert [d["subscription_id"] for d in await outbox.deliveries()] == ["pending"]

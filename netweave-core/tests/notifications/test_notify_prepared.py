"""The subscription list read before a change's transaction (``NotificationRecorder.prepare``)
is used only while this process wrote no subscription since: a subscription committed before
the change always gets its events, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from netweave.notifications import NotificationRecorder
from netweave.notifications.events import DeploymentEvent
from netweave.store import SubscriptionRecord
from netweave.store.outbox import OutboxStore
from netweave.store.sql import SqlStore


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
    with store._subscription_write():
        assert await recorder.prepare() is None
    assert await recorder.prepare() is not None

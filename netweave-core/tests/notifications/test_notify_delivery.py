"""Outbox delivery against a real subscriber on 127.0.0.1, on SQLite and PostgreSQL.

The events are recorded through the recorder the hook bus uses; the worker delivers them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from netweave.config import NotificationSettings
from netweave.models import Operation, OperationState, OperationType
from netweave.notifications import CallbackClient, CallbackPolicy, NotificationRecorder
from netweave.notifications.delivery import DeliveryWorker
from netweave.store import SubscriptionRecord
from netweave.store.outbox import DELIVERED, FAILED, OutboxStore
from netweave.store.sql import SqlStore
from notify_support import Subscriber, subscriber_server
from support.postgres import Backend

LOOPBACK_OK = CallbackPolicy(allowed_cidrs=["127.0.0.0/8"])


def fast_settings(**changes: Any) -> NotificationSettings:
    base: dict[str, Any] = {
        "poll_interval": 0.02,
        "backoff_base": 0.02,
        "backoff_max": 0.1,
        "max_attempts": 6,
        "settle_seconds": 0.05,
        "timeout": 5.0,
        "workers": 4,
    }
    base.update(changes)
    return NotificationSettings(**base)


async def subscribe(
    store: SqlStore,
    url: str,
    *,
    filter: dict[str, Any] | None = None,
    authentication: dict[str, Any] | None = None,
    name: str = "s1",
) -> str:
    subscription_id = f"sub-{name}"
    await store.add_subscription(
        SubscriptionRecord(
            subscription_id=subscription_id,
            callback_uri=f"{url}/cb",
            filter=filter or {},
            created_at=datetime.now(UTC),
            authentication=authentication,
        )
    )
    return subscription_id


def deployment(deployment_id: str, status: str, at: datetime) -> dict[str, Any]:
    return {
        "deploymentId": deployment_id,
        "name": deployment_id,
        "packageId": "app-1.0.0",
        "adapter": "mem",
        "status": status,
        "updatedAt": at.isoformat(),
    }


def operation(deployment_id: str, state: OperationState, at: datetime) -> Operation:
    return Operation(
        operation_id=f"op-{deployment_id}",
        operation_type=OperationType.CREATE,
        deployment_id=deployment_id,
        adapter="mem",
        state=state,
        start_time=at,
        state_entered_time=at,
    )


async def record_lifecycle(recorder: NotificationRecorder, deployment_id: str) -> list[str]:
    """The events of one create, in the order they happened; returns their ids."""
    t0 = datetime.now(UTC)
    steps: list[tuple[str, Any]] = [
        ("dep", ("DeploymentCreated", deployment(deployment_id, "PENDING", t0))),
        ("op", (operation(deployment_id, OperationState.STARTING, t0), None)),
        ("op", (operation(deployment_id, OperationState.PROCESSING, t0), "STARTING")),
        ("dep", ("DeploymentChanged", deployment(deployment_id, "DEPLOYING", t0))),
        ("op", (operation(deployment_id, OperationState.COMPLETED, t0), "PROCESSING")),
        ("dep", ("DeploymentChanged", deployment(deployment_id, "DEPLOYED", t0))),
    ]
    ids = []
    for index, (kind, args) in enumerate(steps):
        when = t0 + timedelta(milliseconds=index)
        if kind == "dep":
            event_type, body = args
            body["updatedAt"] = when.isoformat()
            event_id = await recorder.deployment_event(event_type, body)
        else:
            op, previous = args
            op.state_entered_time = when
            event_id = await recorder.operation_event(op, previous)
        assert event_id is not None
        ids.append(event_id)
    return ids


async def drain(outbox: OutboxStore, expected: int, wait_seconds: float = 20.0) -> None:
    """Wait until ``expected`` deliveries are finished (DELIVERED or FAILED)."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        rows = await outbox.deliveries()
        if len([r for r in rows if r["state"] != "PENDING"]) >= expected:
            return
        await asyncio.sleep(0.05)
    rows = await outbox.deliveries()
    raise AssertionError(f"deliveries not finished: {[(r['id'], r['state']) for r in rows]}")


def order_of(bodies: list[dict[str, Any]], deployment_id: str) -> list[str]:
    return [b["id"] for b in bodies if b.get("deploymentId") == deployment_id]


async def test_failing_callback_gets_every_event_once_in_order(store: SqlStore) -> None:
    subscriber = Subscriber(fail_first=2)
    settings = fast_settings()
    async with subscriber_server(subscriber) as url:
        client = CallbackClient(LOOPBACK_OK, timeout=5.0)
        outbox = OutboxStore(store)
        worker = DeliveryWorker(outbox, store, client, settings)
        recorder = NotificationRecorder(store, outbox, settle_seconds=0.05)
        subscription_id = await subscribe(store, url)
        ids_a = await record_lifecycle(recorder, "dep-a")
        ids_b = await record_lifecycle(recorder, "dep-b")
        worker.start()
        try:
            await drain(outbox, len(ids_a) + len(ids_b))
        finally:
            await worker.stop()
            await client.close()

    unique = subscriber.unique_accepted()
    # Every event arrived, each accepted exactly once, after two refusals each.
    assert sorted(b["id"] for b in unique) == sorted(ids_a + ids_b)
    assert len(subscriber.accepted()) == len(unique)
    assert all(subscriber.attempts[i] == 3 for i in ids_a + ids_b)
    # Per deployment, in the order the changes happened.
    assert order_of(unique, "dep-a") == ids_a
    assert order_of(unique, "dep-b") == ids_b
    body = next(b for b in unique if b["id"] == ids_a[0])
    assert body["subscriptionId"] == subscription_id
    assert body["notificationType"] == "DeploymentCreated"
    assert body["timeStamp"].endswith("Z")
    assert body["_links"]["deployment"]["href"] == "/o2dms/v1/nfDeployments/dep-a"
    op_body = next(
        b
        for b in unique
        if b["notificationType"] == "OperationStateChanged" and b["deploymentId"] == "dep-a"
    )
    assert op_body["operationState"] == "STARTING"
    assert op_body["data"]["operationId"] == "op-dep-a"
    assert {r["state"] for r in await outbox.deliveries()} == {DELIVERED}


async def test_two_replicas_deliver_each_event_once_in_order(db: Backend, store: SqlStore) -> None:
    """Two workers on two stores (two replicas) over one database."""
    subscriber = Subscriber(fail_first=1)
    settings = fast_settings(workers=8)
    second = db.connect()
    async with subscriber_server(subscriber) as url:
        client = CallbackClient(LOOPBACK_OK, timeout=5.0)
        outbox_a, outbox_b = OutboxStore(store), OutboxStore(second)
        workers = [
            DeliveryWorker(outbox_a, store, client, settings, owner="replica-a"),
            DeliveryWorker(outbox_b, second, client, settings, owner="replica-b"),
        ]
        recorder = NotificationRecorder(store, outbox_a, settle_seconds=0.05)
        await subscribe(store, url)
        expected: dict[str, list[str]] = {}
        for n in range(6):
            expected[f"dep-{n}"] = await record_lifecycle(recorder, f"dep-{n}")
        for worker in workers:
            worker.start()
        try:
            await drain(outbox_a, sum(len(v) for v in expected.values()))
        finally:
            for worker in workers:
                await worker.stop()
            await client.close()
            await second.close()

    unique = subscriber.unique_accepted()
    assert len(unique) == sum(len(v) for v in expected.values())
    # No lease expired, so no event was accepted twice even with two replicas claiming.
    assert len(subscriber.accepted()) == len(unique)
    for deployment_id, ids in expected.items():
        assert order_of(unique, deployment_id) == ids


async def test_gives_up_after_max_attempts_and_logs(
    store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    subscriber = Subscriber(fail_first=1000)
    settings = fast_settings(max_attempts=3)
    password = "basic-pass-never-logged"
    auth = {"authType": ["BASIC"], "paramsBasic": {"userName": "smo", "password": password}}
    async with subscriber_server(subscriber) as url:
        client = CallbackClient(LOOPBACK_OK, timeout=5.0)
        outbox = OutboxStore(store)
        worker = DeliveryWorker(outbox, store, client, settings)
        recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)
        await subscribe(store, url, authentication=auth)
        first = await recorder.deployment_event(
            "DeploymentCreated", deployment("dep-x", "PENDING", datetime.now(UTC))
        )
        second = await recorder.deployment_event(
            "DeploymentChanged", deployment("dep-x", "DEPLOYING", datetime.now(UTC))
        )
        with caplog.at_level(logging.INFO, logger="netweave.notifications"):
            worker.start()
            try:
                await drain(outbox, 2)
            finally:
                await worker.stop()
                await client.close()
    rows = {r["event_id"]: r for r in await outbox.deliveries()}
    assert rows[first]["state"] == FAILED and rows[first]["attempts"] == 3
    # The next event of the deployment waited for the first to be given up, then had its own.
    assert rows[second]["state"] == FAILED and rows[second]["attempts"] == 3
    assert subscriber.attempts == {first: 3, second: 3}
    # Later event only after the earlier one was given up.
    order = [r.body["id"] for r in subscriber.receipts]
    assert order.index(second) > max(i for i, e in enumerate(order) if e == first)
    assert f"{first} (DeploymentCreated) to subscription sub-s1 failed after 3" in caplog.text
    assert password not in caplog.text
    assert base64.b64encode(f"smo:{password}".encode()).decode() not in caplog.text


async def test_filters_select_subscribers(store: SqlStore) -> None:
    outbox = OutboxStore(store)
    recorder = NotificationRecorder(store, outbox)
    url = "http://127.0.0.1:9"
    await subscribe(store, url, name="all")
    await subscribe(store, url, name="types", filter={"eventTypes": ["PackageUploaded"]})
    await subscribe(store, url, name="dep", filter={"deploymentIds": ["dep-1"]})
    await subscribe(store, url, name="pkg", filter={"packageIds": ["app-1.0.0"]})
    await subscribe(store, url, name="adapter", filter={"adapters": ["other"]})
    now = datetime.now(UTC)
    package = {"packageId": "app-1.0.0", "adapter": "mem", "updatedAt": now.isoformat()}
    pkg_event = await recorder.package_event("PackageUploaded", package)
    dep_event = await recorder.deployment_event("DeploymentCreated", deployment("dep-1", "P", now))
    other = await recorder.deployment_event("DeploymentCreated", deployment("dep-2", "P", now))
    # The operation event carries no package: its deployment's package is looked up.
    from netweave.models import DeploymentStatus
    from netweave.store import DeploymentRecord

    await store.add_deployment(
        DeploymentRecord(
            deployment_id="dep-1",
            name="dep-1",
            namespace="default",
            package_id="app-1.0.0",
            package_version="1.0.0",
            adapter="mem",
            status=DeploymentStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    op_event = await recorder.operation_event(
        operation("dep-1", OperationState.STARTING, now), None
    )

    def targets(event_id: str | None) -> set[str]:
        return {r["subscription_id"] for r in rows if r["event_id"] == event_id}

    rows = await outbox.deliveries()
    assert targets(pkg_event) == {"sub-all", "sub-types", "sub-pkg"}
    assert targets(dep_event) == {"sub-all", "sub-dep", "sub-pkg"}
    assert targets(other) == {"sub-all", "sub-pkg"}
    assert targets(op_event) == {"sub-all", "sub-dep", "sub-pkg"}
    # Nobody subscribed to this adapter's events: nothing stored.
    await store.delete_subscription("sub-all")
    await store.delete_subscription("sub-pkg")
    nothing = await recorder.package_event("PackageDeleted", {"packageId": "zzz", "adapter": "mem"})
    assert nothing is None


async def test_deleted_subscription_drops_its_deliveries(store: SqlStore) -> None:
    outbox = OutboxStore(store)
    recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)
    client = CallbackClient(LOOPBACK_OK, timeout=1.0)
    worker = DeliveryWorker(outbox, store, client, fast_settings())
    await subscribe(store, "http://127.0.0.1:9")
    await recorder.deployment_event("DeploymentCreated", deployment("d", "P", datetime.now(UTC)))
    await store.delete_subscription("sub-s1")
    assert await worker.run_once() == 1
    await client.close()
    [row] = await outbox.deliveries()
    assert row["state"] == FAILED and row["last_error"] == "subscription deleted"


async def test_basic_and_client_credentials_reach_the_callback(store: SqlStore) -> None:
    basic = Subscriber(
        expect_authorization="Basic " + base64.b64encode(b"smo:s3cret-pass").decode()
    )
    oauth = Subscriber(require_token=True)
    async with subscriber_server(basic) as basic_url, subscriber_server(oauth) as oauth_url:
        client = CallbackClient(LOOPBACK_OK, timeout=5.0)
        outbox = OutboxStore(store)
        worker = DeliveryWorker(outbox, store, client, fast_settings())
        recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)
        await subscribe(
            store,
            basic_url,
            name="basic",
            authentication={
                "authType": ["BASIC"],
                "paramsBasic": {"userName": "smo", "password": "s3cret-pass"},
            },
        )
        await subscribe(
            store,
            oauth_url,
            name="oauth",
            authentication={
                "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {
                    "clientId": oauth.client_id,
                    "clientPassword": oauth.client_secret,
                    "tokenEndpoint": f"{oauth_url}/token",
                },
            },
        )
        try:
            for n in range(3):
                await recorder.deployment_event(
                    "DeploymentChanged", deployment(f"d{n}", "X", datetime.now(UTC))
                )
            for _ in range(50):  # bounded: each round finishes or backs off what it claimed
                if not await worker.run_once():
                    break
            # The token is cached: one token request for three deliveries.
            assert oauth.token_requests == 1
            # The endpoint revokes it: the next delivery gets 401, fetches a new one, succeeds.
            oauth.revoke_tokens()
            await recorder.deployment_event(
                "DeploymentChanged", deployment("d9", "X", datetime.now(UTC))
            )
            for _ in range(50):  # bounded: each round finishes or backs off what it claimed
                if not await worker.run_once():
                    break
        finally:
            await client.close()
    assert len(basic.unique_accepted()) == 4
    assert len(oauth.unique_accepted()) == 4
    assert oauth.token_requests == 2
    assert [r.status for r in oauth.receipts].count(401) == 1
    assert {r["state"] for r in await outbox.deliveries()} == {DELIVERED}


async def test_a_dead_replicas_lease_expires_and_another_delivers(
    db: Backend, store: SqlStore
) -> None:
    subscriber = Subscriber()
    second = db.connect()
    async with subscriber_server(subscriber) as url:
        client = CallbackClient(LOOPBACK_OK, timeout=5.0)
        recorder = NotificationRecorder(store, OutboxStore(store), settle_seconds=0.0)
        await subscribe(store, url)
        event_id = await recorder.deployment_event(
            "DeploymentCreated", deployment("dep-l", "PENDING", datetime.now(UTC))
        )
        # Replica A claims the delivery and dies without finishing it.
        [held] = await OutboxStore(store).claim(
            owner="replica-a", lease_seconds=0.5, limit=10, now=datetime.now(UTC)
        )
        survivor = DeliveryWorker(OutboxStore(second), second, client, fast_settings())
        try:
            assert await survivor.run_once() == 0  # the lease is still A's
            await asyncio.sleep(0.6)
            assert await survivor.run_once() == 1  # expired: taken over
        finally:
            await client.close()
            await second.close()
    [row] = await OutboxStore(store).deliveries()
    assert held.event_id == event_id
    assert row["state"] == DELIVERED and row["attempts"] == 2
    assert [b["id"] for b in subscriber.accepted()] == [event_id]


async def test_purge_forgets_finished_work_only(store: SqlStore) -> None:
    outbox = OutboxStore(store)
    recorder = NotificationRecorder(store, outbox, settle_seconds=0.0)
    await subscribe(store, "http://127.0.0.1:9")
    done = await recorder.deployment_event(
        "DeploymentCreated", deployment("a", "P", datetime.now(UTC))
    )
    pending = await recorder.deployment_event(
        "DeploymentCreated", deployment("b", "P", datetime.now(UTC))
    )
    [row] = [r for r in await outbox.deliveries() if r["event_id"] == done]
    await outbox.delivered(row["id"], now=datetime.now(UTC))
    removed = await outbox.purge(older_than=datetime.now(UTC) + timedelta(seconds=1))
    assert removed == 1
    assert [r["event_id"] for r in await outbox.deliveries()] == [pending]

"""Events are recorded in the transaction of the change they report (issue 6: no window between
commit and record), on SQLite and on real PostgreSQL, through the real app and services.

* A failure after the outbox insert, before commit, leaves neither the change nor its event.
* The database refusing the outbox insert fails the change (500) and stores nothing.
* With the post-commit step removed (as if the process died right after each commit), every
  committed change still has its outbox row, in the order the changes happened.
* Plugins' event hooks run after commit: a hook reading the database on its own connection
  already sees the change and its outbox row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from netweave.config.plugins import make_plugin_manager
from netweave.errors import BackendUnavailable
from netweave.hookspecs import hookimpl
from netweave.notifications import NotificationRecorder
from netweave.notifications.events import GatewayEvent
from netweave.operations.events import HookBus
from netweave.store.sql import SqlStore
from netweave.store.tables import DeliveryRow, OutboxRow
from sqlalchemy import Table, func, select
from support.gateway import Gateway, make_settings, running_gateway
from support.postgres import temporary_database

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
_X = cast(Table, OutboxRow.__table__)
_N = cast(Table, DeliveryRow.__table__)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """``None``: the gateway's SQLite file; else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with temporary_database("nw_atomic") as url:
        yield url


async def outbox_events(store: SqlStore) -> list[dict[str, Any]]:
    """Every outbox event, in the order deliveries are claimed (occurred_at, delivery id)."""
    async with store.engine.connect() as conn:
        first = (
            select(_N.c.event_id, func.min(_N.c.id).label("first_id"))
            .group_by(_N.c.event_id)
            .subquery()
        )
        rows = await conn.execute(
            select(_X.c.event_id, _X.c.event_type, _X.c.payload, first.c.first_id)
            .join(first, first.c.event_id == _X.c.event_id)
            .order_by(first.c.first_id)
        )
        events = [dict(r._mapping) for r in rows]
        occurred = {
            r.event_id: r.occurred_at
            for r in await conn.execute(select(_N.c.event_id, _N.c.occurred_at))
        }
    events.sort(key=lambda e: (occurred[e["event_id"]], e["first_id"]))
    return events


def story(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for event in events:
        payload = event["payload"]
        data = payload["data"]
        detail = payload.get("operationState") or data.get("status") or data.get("state")
        out.append(f"{event['event_type']}:{detail}")
    return out


async def subscribe_all(gw: Gateway) -> None:
    # make_settings: 127.0.0.1 allowed, the callback is not tested on create.
    created = await gw.post(
        "/o2dms/v1/subscriptions", json={"callbackUri": "http://127.0.0.1:9/cb"}
    )
    assert created.status_code == 201, created.text


async def test_failure_after_the_outbox_insert_rolls_back_change_and_event(
    tmp_path: Path, store_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = NotificationRecorder.record_events
    armed = {"on": False}
    inserted: list[str] = []

    async def insert_then_fail(
        self: NotificationRecorder, events: Sequence[GatewayEvent], prepared: Any = None
    ) -> list[str | None]:
        ids = await real(self, events, prepared)
        if armed["on"]:
            inserted.extend(i for i in ids if i is not None)
            # The rows are written; now the transaction fails before it commits.
            raise BackendUnavailable("injected: the database went away before COMMIT")
        return ids

    monkeypatch.setattr(NotificationRecorder, "record_events", insert_then_fail)
    async with running_gateway(tmp_path, store_url=store_url) as gw:
        await subscribe_all(gw)
        package = await gw.register_package()
        package_id = package["packageId"]
        before = story(await outbox_events(gw.store))
        assert before == ["PackageUploaded:AVAILABLE"]

        armed["on"] = True
        changed = await gw.patch(f"{PACKAGES}/{package_id}", json={"state": "DEPRECATED"})
        assert changed.status_code == 503, changed.text
        created = await gw.post(DEPLOYMENTS, json={"name": "web", "packageId": package_id})
        assert created.status_code == 503, created.text
        uploaded = await gw.post(
            PACKAGES,
            json={"name": "other", "artifactVersion": "2.0.0", "packageUri": "oci://r/other:2"},
        )
        assert uploaded.status_code == 503, uploaded.text
        # The events were inserted (and then rolled back with their changes).
        assert len(inserted) == 4  # PackageChanged; DeploymentCreated + STARTING; PackageUploaded

        # No change: the package kept its state, no deployment, no operation, no new package.
        assert (await gw.get(f"{PACKAGES}/{package_id}")).json()["state"] == "AVAILABLE"
        assert (await gw.get(DEPLOYMENTS)).json()["total"] == 0
        assert (await gw.get("/o2dms/v1/operations")).json()["total"] == 0
        # (The memory backend kept the uploaded archive: a later listing adopts it, as it
        # adopts any chart pushed behind the gateway's back; the store has no record of it.)
        assert await gw.store.find_package("other", "2.0.0") is None
        # No event: none of the inserted rows survived.
        after = await outbox_events(gw.store)
        assert story(after) == before
        assert not {e["event_id"] for e in after} & set(inserted)

        # Disarmed, the same change commits with exactly its event.
        armed["on"] = False
        changed = await gw.patch(f"{PACKAGES}/{package_id}", json={"state": "DEPRECATED"})
        assert changed.status_code == 200, changed.text
        assert story(await outbox_events(gw.store)) == [
            "PackageUploaded:AVAILABLE",
            "PackageChanged:DEPRECATED",
        ]


async def refuse_outbox_inserts(store: SqlStore) -> None:
    """A trigger makes every insert into the deliveries table fail, as a database would."""
    async with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_deliveries BEFORE INSERT ON notification_deliveries "
                "BEGIN SELECT RAISE(ABORT, 'deliveries refused by the test'); END"
            )
        else:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse_deliveries() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'deliveries refused by the test'; END $$"
            )
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_deliveries BEFORE INSERT ON notification_deliveries "
                "FOR EACH ROW EXECUTE FUNCTION refuse_deliveries()"
            )


async def test_a_failing_outbox_insert_fails_the_change_with_a_server_error(
    tmp_path: Path, store_url: str | None
) -> None:
    """Recording is part of the change (at least once needs it): the database refusing the
    outbox insert fails the change, as a 500 (never the client's fault), and stores nothing."""
    async with running_gateway(tmp_path, store_url=store_url) as gw:
        await subscribe_all(gw)
        package = await gw.register_package()
        package_id = package["packageId"]
        await refuse_outbox_inserts(gw.store)
        changed = await gw.patch(f"{PACKAGES}/{package_id}", json={"state": "DEPRECATED"})
        assert changed.status_code == 500, changed.text
        assert changed.headers["content-type"].startswith("application/problem+json")
        created = await gw.post(DEPLOYMENTS, json={"name": "web", "packageId": package_id})
        assert created.status_code == 500, created.text
        assert (await gw.get(f"{PACKAGES}/{package_id}")).json()["state"] == "AVAILABLE"
        assert (await gw.get(DEPLOYMENTS)).json()["total"] == 0
        assert (await gw.get("/o2dms/v1/operations")).json()["total"] == 0
        assert story(await outbox_events(gw.store)) == ["PackageUploaded:AVAILABLE"]
        async with gw.store.engine.connect() as conn:
            orphans = await conn.execute(select(func.count()).select_from(_X))
            assert orphans.scalar_one() == 1  # the refused change's outbox row rolled back too


async def test_every_committed_change_has_its_outbox_row_without_the_post_commit_step(
    tmp_path: Path, store_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post-commit step (plugins, waking the delivery worker) never runs, as if the process
    were killed right after each commit: the outbox still holds every change's event."""
    skipped: list[GatewayEvent] = []

    async def died_after_commit(self: HookBus, events: Sequence[GatewayEvent]) -> None:
        skipped.extend(events)

    monkeypatch.setattr(HookBus, "broadcast", died_after_commit)
    async with running_gateway(tmp_path, store_url=store_url) as gw:
        await subscribe_all(gw)
        package = await gw.register_package()
        package_id = package["packageId"]
        for state in ("DEPRECATED", "AVAILABLE"):
            changed = await gw.patch(f"{PACKAGES}/{package_id}", json={"state": state})
            assert changed.status_code == 200, changed.text
        deployment, operation = await gw.deploy(package_id)
        assert operation["state"] == "COMPLETED"
        deployment_id = deployment["deploymentId"]
        scaled = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/scale", json={"replicas": 2})
        assert scaled.status_code == 202, scaled.text
        await gw.wait_operation(gw.operation_id(scaled))
        deleted = await gw.delete(f"{DEPLOYMENTS}/{deployment_id}")
        assert deleted.status_code == 202, deleted.text
        await gw.wait_operation(gw.operation_id(deleted))
        gone = await gw.delete(f"{PACKAGES}/{package_id}")
        assert gone.status_code == 204, gone.text
        events = await outbox_events(gw.store)

    assert skipped, "the post-commit step was reached and skipped"
    package_story = [
        s for e, s in zip(events, story(events), strict=True) if "deploymentId" not in e["payload"]
    ]
    assert package_story == [
        "PackageUploaded:AVAILABLE",
        "PackageChanged:DEPRECATED",
        "PackageChanged:AVAILABLE",
        "PackageDeleted:AVAILABLE",
    ]
    deployment_story = [
        s
        for e, s in zip(events, story(events), strict=True)
        if e["payload"].get("deploymentId") == deployment_id
    ]
    assert deployment_story == [
        "DeploymentCreated:PENDING",
        "OperationStateChanged:STARTING",
        "OperationStateChanged:PROCESSING",
        "DeploymentChanged:DEPLOYING",
        "DeploymentChanged:DEPLOYED",
        "OperationStateChanged:COMPLETED",
        "OperationStateChanged:STARTING",
        "OperationStateChanged:PROCESSING",
        "DeploymentChanged:DEPLOYING",
        "DeploymentChanged:DEPLOYED",
        "OperationStateChanged:COMPLETED",
        "OperationStateChanged:STARTING",
        "OperationStateChanged:PROCESSING",
        "DeploymentChanged:DELETING",
        "DeploymentDeleted:DELETED",
        "OperationStateChanged:COMPLETED",
    ]
    # Each event once (one subscription: one delivery each), every one still pending.
    assert len({e["event_id"] for e in events}) == len(events) == len(skipped)


class SeesCommitted:
    """A plugin reading the SQLite file on its own connection when it hears of a change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[str, str | None, int]] = []

    def _look(self, package_id: str) -> tuple[str | None, int]:
        with sqlite3.connect(self.path) as conn:
            row = conn.execute(
                "SELECT state FROM packages WHERE package_id = ?", (package_id,)
            ).fetchone()
            events = conn.execute(
                "SELECT count(*) FROM outbox WHERE event_type LIKE 'Package%'"
            ).fetchone()[0]
        return (row[0] if row else None), int(events)

    @hookimpl
    def netweave_package_event(self, event_type: str, package: dict[str, Any]) -> None:
        state, events = self._look(package["packageId"])
        self.seen.append((event_type, state, events))


async def test_plugins_hear_of_a_change_only_after_it_and_its_event_committed(
    tmp_path: Path,
) -> None:
    plugin = SeesCommitted(tmp_path / "netweave.db")
    pm = make_plugin_manager()
    pm.register(plugin)
    settings = make_settings(tmp_path / "data")
    async with running_gateway(tmp_path, settings=settings, plugin_manager=pm) as gw:
        await subscribe_all(gw)
        package = await gw.register_package()
        changed = await gw.patch(f"{PACKAGES}/{package['packageId']}", json={"state": "DEPRECATED"})
        assert changed.status_code == 200, changed.text
        gone = await gw.delete(f"{PACKAGES}/{package['packageId']}")
        assert gone.status_code == 204, gone.text
    # Another connection saw each change and its outbox row: the hook ran after COMMIT.
    assert plugin.seen == [
        ("PackageUploaded", "AVAILABLE", 1),
        ("PackageChanged", "DEPRECATED", 2),
        ("PackageDeleted", None, 3),
    ]

"""The reconciler through the HTTP API with a memory backend (polled), and its shard leases
shared by two replicas on real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from netweave.config import ReconcileSettings
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.errors import BackendError, BackendUnavailable
from netweave.models import DeploymentStatus
from netweave.operations.events import HookBus
from netweave.reconcile import Reconciler, shard_of
from netweave.store import DeploymentRecord
from netweave.store.sql import create_store
from netweave.testing import require_backend
from netweave.testing.polling import until
from netweave.testing.postgres import temporary_database
from support.gateway import make_settings, running_gateway
from support.memory_adapter import MemoryAdapter

BASE = "/o2dms/v1/nfDeployments"
FAST = ReconcileSettings(interval=0.2, max_interval=0.4, lease_seconds=5.0, list_interval=0.2)


async def recorded(gw: Any, deployment_id: str) -> DeploymentRecord:
    record = await gw.store.get_deployment(deployment_id)
    assert record is not None
    return record


async def test_an_unreachable_backend_flips_nothing_and_a_change_behind_its_back_is_recorded(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    settings.reconcile = FAST
    adapter = MemoryAdapter("mem")
    async with running_gateway(tmp_path, adapters=[adapter], settings=settings) as gw:
        await gw.register_package("app", "1.0.0")
        deployment, operation = await gw.deploy("app-1.0.0", values={"a": 1})
        assert operation["state"] == "COMPLETED"
        deployment_id = deployment["deploymentId"]
        # A subscriber, so the events are recorded in the outbox (a callback nobody answers:
        # the outbox row is what this test reads).
        subscribed = await gw.post(
            "/o2dms/v1/subscriptions",
            json={
                "callbackUri": "http://127.0.0.1:9/cb",
                "filter": {"eventTypes": ["DeploymentHealthChanged", "DeploymentDriftDetected"]},
            },
        )
        assert subscribed.status_code == 201, subscribed.text
        reconciler = gw.app.state.services.reconciler
        assert reconciler is not None

        # The backend stops answering: the reconciler backs off and records nothing. Choice:
        # an unreachable backend is no evidence of a failure, so the last known state stays
        # (reads answer UNKNOWN for that answer meanwhile), never DEGRADED or FAILED.
        adapter.fail("get_deployment", BackendUnavailable("backend down"), times=1000)
        await until(_at_least(reconciler.stats, "unreachable", 3))
        record = await recorded(gw, deployment_id)
        assert (record.status, record.drift) == (DeploymentStatus.DEPLOYED, None)
        events_before = await _deployment_events(gw)

        # Back, with the release degraded and its values changed by someone else.
        adapter._failures.pop("get_deployment", None)
        release = next(iter(adapter.releases.values()))
        release.status = DeploymentStatus.DEGRADED
        release.values = {"a": 2}

        async def degraded() -> bool:
            return (await recorded(gw, deployment_id)).status is DeploymentStatus.DEGRADED

        await until(degraded, within=15.0)
        record = await recorded(gw, deployment_id)
        assert record.drift is not None
        assert record.drift["differences"][0]["change"] == "values"
        assert record.values == {"a": 1}  # the desired state is kept; drift says what differs
        assert events_before == []
        kinds = await _deployment_events(gw)
        assert sorted(kinds) == ["DeploymentDriftDetected", "DeploymentHealthChanged"], kinds

        wire = (await gw.get(f"{BASE}/{deployment_id}")).json()
        assert wire["driftDetected"] is True
        assert wire["drift"]["differences"][0]["change"] == "values"

        # Repair: the recorded values applied again through the outcome rule.
        release.status = DeploymentStatus.DEPLOYED
        response = await gw.post(f"{BASE}/{deployment_id}/reconcile")
        assert response.status_code == 202, response.text
        done = await gw.wait_operation(response.json()["operationId"])
        assert done["state"] == "COMPLETED", done
        assert release.values == {"a": 1}
        record = await recorded(gw, deployment_id)
        assert (record.status, record.drift) == (DeploymentStatus.DEPLOYED, None)


def _at_least(stats: Any, name: str, count: int) -> Any:
    async def check() -> bool:
        return bool(getattr(stats, name) >= count)

    return check


async def _deployment_events(gw: Any) -> list[str]:
    """Event types in the outbox, oldest first."""
    from sqlalchemy import text

    async with gw.store.engine.connect() as conn:
        rows = await conn.execute(text("SELECT event_type FROM outbox ORDER BY id"))
        return [str(r[0]) for r in rows]


async def test_a_repair_while_another_operation_holds_it_is_409(tmp_path: Path) -> None:
    adapter = MemoryAdapter("mem")
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        await gw.register_package("app", "1.0.0")
        deployment, _ = await gw.deploy("app-1.0.0")
        gate = adapter.hang("update_deployment")
        url = f"{BASE}/{deployment['deploymentId']}"
        first = await gw.patch(url, json={"values": {"b": 1}})
        assert first.status_code == 202
        second = await gw.post(f"{url}/reconcile")
        assert second.status_code == 409, second.text
        assert second.headers["content-type"].startswith("application/problem+json")
        gate.set()
        await gw.wait_operation(first.json()["operationId"])
        unknown = f"{BASE}/00000000-0000-4000-8000-000000000000/reconcile"
        assert (await gw.post(unknown)).status_code == 404


@pytest.fixture
def pg_url() -> Iterator[str]:
    with temporary_database("nw_reconcile", required=False) as url:
        if url is None:
            require_backend("PostgreSQL not reachable")
        assert url is not None
        yield url


async def test_two_replicas_share_the_shards_and_take_over_a_dead_ones(pg_url: str) -> None:
    stores = [create_store(pg_url), create_store(pg_url)]
    await stores[0].migrate()
    adapter = MemoryAdapter("mem")
    registry = AdapterRegistry({"mem": adapter})
    hooks = HookBus(make_plugin_manager())
    now = datetime.now(UTC)
    for n in range(40):
        await stores[0].add_deployment(
            DeploymentRecord(
                deployment_id=f"d-{n:03d}",
                name=f"n{n}",
                namespace="default",
                package_id="p",
                package_version="1",
                adapter="mem",
                status=DeploymentStatus.DEPLOYED,
                created_at=now,
                updated_at=now,
                backend_ref=f"default/n{n}",
            )
        )
    a, b = (
        Reconciler(s, registry, hooks, owner=owner, shards=8, lease_seconds=1.5)
        for s, owner in zip(stores, ("replica-a", "replica-b"), strict=True)
    )
    try:
        await a.claim()
        assert a.held == set(range(8))  # alone: every shard
        await b.claim()  # a holds them all: b gets none yet, but is seen
        assert b.held == set()
        await a.claim()  # a sees b and gives up its excess
        await b.claim()
        assert a.held and b.held and not (a.held & b.held)
        assert a.held | b.held == set(range(8))
        await a.refresh()
        await b.refresh()
        # Each deployment is reconciled by exactly one replica.
        assert not set(a._tracked) & set(b._tracked)
        assert len(a._tracked) + len(b._tracked) == 40
        assert all(shard_of(d, 8) in a.held for d in a._tracked)

        # a dies (stops renewing); once its leases expire b takes every shard over.
        await asyncio.sleep(1.7)
        await b.claim()
        assert b.held == set(range(8))
        await b.refresh()
        assert len(b._tracked) == 40
    finally:
        for store in stores:
            await store.close()


class _BatchMemoryAdapter(MemoryAdapter):
    """Read a poll round in one call, as Argo CD, OSM and ONAP SO do."""

    BATCH_READS = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.rounds = 0

    async def _get_deployments(self, backend_refs: list[str]) -> dict[str, Any]:
        self.rounds += 1
        return {ref: await self._get_deployment(ref) for ref in backend_refs}


async def test_a_batched_round_leaves_a_deployment_an_operation_holds_to_that_operation(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    settings.reconcile = FAST
    adapter = _BatchMemoryAdapter("mem")
    async with running_gateway(tmp_path, adapters=[adapter], settings=settings) as gw:
        await gw.register_package("app", "1.0.0")
        deployment, operation = await gw.deploy("app-1.0.0", values={"a": 1})
        assert operation["state"] == "COMPLETED"
        deployment_id = deployment["deploymentId"]
        # An update the backend refuses: FAILED_TEMP, which holds the deployment.
        adapter.fail("update_deployment", BackendError("refused"))
        response = await gw.patch(f"{BASE}/{deployment_id}", json={"values": {"a": 2}})
        assert response.status_code == 202, response.text
        held = await gw.wait_operation(response.json()["operationId"])
        assert held["state"] == "FAILED_TEMP", held
        before = await recorded(gw, deployment_id)

        # Behind the gateway's back the release degrades; rounds run, and record nothing.
        release = next(iter(adapter.releases.values()))
        release.status = DeploymentStatus.DEGRADED
        rounds = adapter.rounds

        async def two_more_rounds() -> bool:
            return adapter.rounds >= rounds + 2

        await until(two_more_rounds)
        after = await recorded(gw, deployment_id)
        assert (after.status, after.drift, after.updated_at) == (
            before.status,
            before.drift,
            before.updated_at,
        )

        # Given up (FAILED): nothing holds it now, and the next round records the change.
        failed = await gw.post(f"/o2dms/v1/operations/{held['operationId']}/fail")
        assert failed.status_code == 200, failed.text

        async def degraded() -> bool:
            return (await recorded(gw, deployment_id)).status is DeploymentStatus.DEGRADED

        await until(degraded)

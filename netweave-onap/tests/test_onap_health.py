"""Live health and drift through the gateway's HTTP API with the ONAP adapter: the reconciler
polls the k8s plugin's (and SO's) emulator while the test changes the instance behind the
gateway's back — its workload stops being available, it is deleted through the plugin or SO
directly — and a subscriber on loopback receives the events. What the backend holds is
checked."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from netweave.testing.etsi_notify import CallbackSink
from netweave.testing.gateway import (
    TERMINAL_OPERATION_STATES,
    GatewayClient,
    gateway_settings,
    running_gateway,
)
from netweave.testing.polling import until
from netweave.testing.reconcile import (
    DEPLOYMENTS,
    events,
    fast_polling,
    notified,
    recorded_until,
    stored,
    subscribe,
)
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.samples import MODEL
from onap_emulators.so import SoEmulator

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


@pytest.fixture
async def gw(k8s_backend: K8sPluginEmulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "onap-edge",
                "type": "onap",
                "default": True,
                "config": {
                    "backend": "k8splugin",
                    "k8sPluginUrl": k8s_backend.url,  # type: ignore[attr-defined]
                    "cloudRegion": k8s_backend.cloud_region,
                    "pollInterval": 0.02,
                    "http": {"retries": 0, "backoff": 0},
                    "timeouts": {"read": 0.5, "write": 20},
                },
            }
        ],
    )
    fast_polling(settings)
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def deploy(gw: GatewayClient, charts: Path) -> str:
    archive = charts / "hello-world-0.1.0.tgz"
    response = await gw.post(
        PACKAGES,
        data={"name": "hello-world", "artifactVersion": "0.1.0"},
        files={"chart": (archive.name, archive.read_bytes(), "application/gzip")},
    )
    assert response.status_code == 201, response.text
    response = await gw.post(
        DEPLOYMENTS,
        json={
            "name": "web",
            "namespace": "ran",
            "packageId": response.json()["packageId"],
            "values": {"replicaCount": 1},
        },
    )
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    deployment_id = str(response.json()["deploymentId"])
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    return deployment_id


def instance_id(k8s: K8sPluginEmulator) -> str:
    (only,) = k8s.instances
    return str(only)


async def test_an_instance_whose_workload_fails_is_degraded_and_ready_again_deployed(
    gw: GatewayClient, k8s_backend: K8sPluginEmulator, notification_sink: CallbackSink, charts: Path
) -> None:
    deployment_id = await deploy(gw, charts)
    await subscribe(gw, notification_sink)
    report = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")).json()
    kinds = {r["kind"]: r for r in report["resources"]}
    assert kinds["Deployment"]["ready"] is True, report  # judged by the Deployment rule
    assert kinds["Service"]["ready"] is None  # no pods in the plugin's answer to judge by

    k8s_backend.degrade(instance_id(k8s_backend))
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEGRADED")
    assert "ReplicasUnavailable" in (record["statusMessage"] or ""), record
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DEGRADED",
    )
    assert record["driftDetected"] is False  # not a change of configuration

    # The plugin's API has no manifest view: 501 with a problem body.
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 501, response.text
    assert response.headers["content-type"].startswith("application/problem+json")

    with k8s_backend._lock:
        k8s_backend.instances[instance_id(k8s_backend)].unready = False
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DEPLOYED",
    )


async def test_an_instance_deleted_behind_the_gateways_back_is_deleted_and_reinstalled_by_repair(
    gw: GatewayClient, k8s_backend: K8sPluginEmulator, notification_sink: CallbackSink, charts: Path
) -> None:
    deployment_id = await deploy(gw, charts)
    await subscribe(gw, notification_sink)
    gone = instance_id(k8s_backend)
    k8s_backend.remove(gone)

    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DELETED")
    assert record["drift"]["differences"][0]["change"] == "uninstalled", record
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DELETED",
    )
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)

    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["operationType"] == "RECONCILE"
    assert operation["state"] == "COMPLETED", operation
    (again,) = k8s_backend.instances
    assert again != gone
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_the_plugin_refusing_or_hanging_during_polls_changes_nothing(
    gw: GatewayClient, k8s_backend: K8sPluginEmulator, notification_sink: CallbackSink, charts: Path
) -> None:
    deployment_id = await deploy(gw, charts)
    await subscribe(gw, notification_sink)
    reconciler: Any = gw.app.state.services.reconciler
    before = await stored(gw, deployment_id)
    path = f"/v1/instance/{instance_id(k8s_backend)}"

    k8s_backend.outage_status = 503
    start = reconciler.stats.unreachable
    calls = sum(1 for _, p in k8s_backend.calls if p == path)
    await asyncio.sleep(2.0)
    tried = sum(1 for _, p in k8s_backend.calls if p == path) - calls
    k8s_backend.outage_status = None
    # Polls every 0.3 s would be ~7 in 2 s; the back-off (0.3, 0.6, 1.2) leaves ~3.
    assert reconciler.stats.unreachable - start >= 2
    assert 2 <= tried <= 5, tried

    k8s_backend.stall = 1.0  # past the adapter's 0.5 s read timeout
    start = reconciler.stats.unreachable
    await until(lambda: reconciler.stats.unreachable > start, 10.0)
    k8s_backend.stall = 0.0

    after = await stored(gw, deployment_id)
    for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
        assert after[key] == before[key], (key, before, after)
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []
    assert events(notification_sink, "DeploymentDriftDetected", deployment_id) == []
    k8s_backend.degrade(instance_id(k8s_backend))
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEGRADED")


@pytest.fixture
async def so_gw(so_backend: SoEmulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "onap-so",
                "type": "onap",
                "default": True,
                "config": {
                    "backend": "so",
                    "soUrl": so_backend.url,
                    "username": so_backend.username,
                    "password": so_backend.password,
                    "cloudRegion": "k8sregionfour",
                    "tenantId": "tenant-1",
                    "pollInterval": 0.02,
                    "http": {"retries": 0, "backoff": 0},
                    "timeouts": {"read": 2, "write": 20},
                },
            }
        ],
    )
    fast_polling(settings)
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def so_deploy(so_gw: GatewayClient, names: list[str]) -> list[str]:
    """One SDC service model registered, a service instance of it per name, each DEPLOYED."""
    response = await so_gw.post(
        PACKAGES,
        json={
            "name": "cu-service",
            "artifactVersion": "2.0",
            "packageType": "sdc-service",
            "packageUri": "sdc:services/beb1259e-dad8-4ee0-a40e-1af20f775d54",
            "source": copy.deepcopy(MODEL),
        },
    )
    assert response.status_code == 201, response.text
    package_id = response.json()["packageId"]
    ids = []
    for name in names:
        response = await so_gw.post(
            DEPLOYMENTS, json={"name": name, "namespace": "ran", "packageId": package_id}
        )
        assert response.status_code == 201, response.text
        operation = await so_gw.wait_operation(
            so_gw.operation_id(response), TERMINAL_OPERATION_STATES
        )
        assert operation["state"] == "COMPLETED", operation
        ids.append(str(response.json()["deploymentId"]))
    for deployment_id in ids:
        await recorded_until(so_gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    return ids


async def test_a_service_instance_deleted_through_so_by_someone_else_is_deleted_and_notified(
    so_gw: GatewayClient, so_backend: SoEmulator, notification_sink: CallbackSink
) -> None:
    (deployment_id,) = await so_deploy(so_gw, ["cu-1"])
    await subscribe(so_gw, notification_sink)

    # An outage of SO's API first: nothing changes.
    so_backend.outage_status = 503
    reconciler: Any = so_gw.app.state.services.reconciler
    start = reconciler.stats.unreachable
    await until(lambda: reconciler.stats.unreachable >= start + 2, 10.0)
    so_backend.outage_status = None
    assert (await stored(so_gw, deployment_id))["status"] == "DEPLOYED"
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []

    (instance,) = so_backend.instances
    so_backend.delete_behind(instance)
    record = await recorded_until(so_gw, deployment_id, lambda d: d["status"] == "DELETED")
    assert record["drift"]["differences"][0]["change"] == "uninstalled", record
    assert so_backend.instances == {}  # SO (A&AI) no longer has it
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DELETED",
    )


ROUND = ["modelType:EQUALS:service"]


def instance_named(so: SoEmulator, name: str) -> str:
    return next(i for i, n in so.instances.items() if n == name)


async def test_a_so_poll_round_reads_all_service_instances_with_one_list(
    so_gw: GatewayClient, so_backend: SoEmulator, notification_sink: CallbackSink
) -> None:
    names = ["cu-1", "cu-2", "cu-3"]
    ids = dict(zip(names, await so_deploy(so_gw, names), strict=True))
    await subscribe(so_gw, notification_sink)

    def counted() -> tuple[int, int]:
        rounds = sum(1 for f in so_backend.lists if f == ROUND)
        return rounds, len(so_backend.lists) - rounds

    start = counted()
    await asyncio.sleep(1.5)
    end = counted()
    rounds, singles = end[0] - start[0], end[1] - start[1]
    # Rounds every 0.3 s for 1.5 s: ~5 lists for the three instances; a read per instance
    # would have been ~15 lists filtered by serviceInstanceId.
    assert 2 <= rounds <= 8, (rounds, singles)
    assert singles == 0, (rounds, singles)

    # Behind the gateway's back: another SO client's delete of cu-2 fails in SO's flow, and
    # one of cu-3 succeeds. Both are read through the round's list.
    so_backend.delete_behind(instance_named(so_backend, "cu-2"), fail="DeleteVfModuleBB failed")
    so_backend.delete_behind(instance_named(so_backend, "cu-3"))
    record = await recorded_until(so_gw, ids["cu-2"], lambda d: d["status"] == "FAILED")
    assert "DeleteVfModuleBB failed" in (record["statusMessage"] or ""), record
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        ids["cu-2"],
        lambda e: e["data"]["status"] == "FAILED",
    )
    record = await recorded_until(so_gw, ids["cu-3"], lambda d: d["status"] == "DELETED")
    assert record["drift"]["differences"][0]["change"] == "uninstalled", record
    assert set(so_backend.instances.values()) == {"cu-1", "cu-2"}  # what SO (A&AI) holds
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        ids["cu-3"],
        lambda e: e["data"]["status"] == "DELETED",
    )
    first = await stored(so_gw, ids["cu-1"])
    assert (first["status"], first["driftDetected"]) == ("DEPLOYED", False), first
    assert events(notification_sink, "DeploymentHealthChanged", ids["cu-1"]) == []


async def test_a_so_request_list_answering_503_changes_nothing_and_is_backed_off(
    so_gw: GatewayClient, so_backend: SoEmulator, notification_sink: CallbackSink
) -> None:
    ids = await so_deploy(so_gw, ["cu-1", "cu-2"])
    await subscribe(so_gw, notification_sink)
    reconciler: Any = so_gw.app.state.services.reconciler
    before = {i: await stored(so_gw, i) for i in ids}

    so_backend.list_outage_status = 503
    try:
        start, listed = reconciler.stats.unreachable, len(so_backend.lists)
        # Behind the failing list, cu-1 is deleted: nothing may be recorded meanwhile.
        so_backend.delete_behind(instance_named(so_backend, "cu-1"))
        await asyncio.sleep(2.0)
        tried = len(so_backend.lists) - listed
        failed = reconciler.stats.unreachable - start
    finally:
        so_backend.list_outage_status = None
    # A failed round counts each deployment it was for unreachable. Reads every 0.3 s would
    # be ~7 per deployment in 2 s; the back-off (0.3, 0.6, 1.2) leaves at most 4. Each list
    # call is a round for one deployment or more.
    assert len(ids) <= failed <= 4 * len(ids), failed
    assert 2 <= tried <= failed, (tried, failed)
    for deployment_id in ids:
        after = await stored(so_gw, deployment_id)
        for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
            assert after[key] == before[deployment_id][key], (key, before, after)
        assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []
    # The list answers again: the delete is seen.
    await recorded_until(so_gw, ids[0], lambda d: d["status"] == "DELETED")
    assert (await stored(so_gw, ids[1]))["status"] == "DEPLOYED"

"""Live health and drift through the gateway's HTTP API with the Argo CD adapter: the reconciler
polls the strict Argo CD emulator while the test changes the cluster behind Argo CD's and the
gateway's back (``kubectl edit``/``delete`` of a managed object, a workload degraded), and a
subscriber on loopback receives the events. What Argo CD holds is checked, not only the
gateway's word."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from argo_emulator import ArgoEmulator
from conftest import CHARTS
from netweave.errors import NotFound
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
from netweave_argocd.adapter import ArgoCDAdapter

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


@asynccontextmanager
async def argo_gateway(
    argo: ArgoEmulator, tmp_path: Path, **config: Any
) -> AsyncIterator[GatewayClient]:
    """The gateway with one Argo CD instance (``config`` added to its settings), polling fast."""
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "argo",
                "type": "argocd",
                "default": True,
                "config": {
                    "serverUrl": argo.url,
                    "authToken": "static-token",
                    "defaultProject": "default",
                    # One try per poll: the reconciler's back-off is what is measured.
                    "http": {"backoff": 0, "retries": 0},
                    "timeouts": {"read": 0.5, "write": 20},
                    **config,
                },
            }
        ],
    )
    fast_polling(settings)
    # Argo CD's application controller runs: every read of an Application steps it.
    argo.auto_tick = True
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


@pytest.fixture
async def gw(argo: ArgoEmulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    async with argo_gateway(argo, tmp_path) as client:
        yield client


@pytest.fixture
async def auto_gw(argo: ArgoEmulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    """Applications synced by Argo CD's auto-sync, without selfHeal (Argo CD's default)."""
    async with argo_gateway(argo, tmp_path, syncPolicy={"automated": True}) as client:
        yield client


async def deploy(gw: GatewayClient) -> str:
    response = await gw.post(
        PACKAGES,
        json={
            "name": "web",
            "artifactVersion": "1.0.0",
            "packageUri": CHARTS,
            "packageType": "helm",
            "source": {"chart": "web"},
        },
    )
    assert response.status_code == 201, response.text
    response = await gw.post(
        DEPLOYMENTS,
        json={
            "name": "web",
            "namespace": "ran",
            "packageId": response.json()["packageId"],
            "values": {"replicaCount": 2},
        },
    )
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    deployment_id = str(response.json()["deploymentId"])
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    return deployment_id


def app_gets(argo: ArgoEmulator) -> int:
    """Reads of Applications: the reconciler's poll round is one list (batched)."""
    reads = ("ApplicationService_Get", "ApplicationService_List")
    return sum(1 for r in argo.requests if r.operation_id in reads)


async def test_an_object_edited_behind_argo_cds_back_is_drift_with_a_diff_and_sync_repairs_it(
    gw: GatewayClient, argo: ArgoEmulator, notification_sink: CallbackSink
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    assert (await stored(gw, deployment_id))["driftDetected"] is False
    diff = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")).json()
    assert diff["driftDetected"] is False, diff
    assert {r["state"] for r in diff["resources"]} == {"in-sync"}

    # Someone scales the Deployment with kubectl: Argo CD compares it OutOfSync.
    argo.edit_live("web", "Deployment", "web", {"spec": {"replicas": 5}})
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    (difference,) = record["drift"]["differences"]
    expected = {"change": "modified", "kind": "Deployment", "name": "web", "namespace": "ran"}
    assert expected.items() <= difference.items(), difference
    assert record["drift"]["since"]
    # Manual sync: nothing syncs it, so it runs what the last sync applied — healthy, so
    # still DEPLOYED, with the drift recorded (not PENDING, as if it were on its way).
    assert record["status"] == "DEPLOYED", record
    with argo.lock:
        status = argo.app("web")["status"]
        assert (status["sync"]["status"], status["health"]["status"]) == ("OutOfSync", "Healthy")
    event = await notified(notification_sink, "DeploymentDriftDetected", deployment_id)
    assert event["data"]["drift"]["differences"][0]["kind"] == "Deployment"
    assert event["data"]["status"] == "DEPLOYED", event
    assert event["id"]
    # A drift, not a health change (both would come from the same observation).
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []

    # The diff is Argo CD's own comparison: desired replicas 2, live 5.
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["driftDetected"] is True
    by_kind = {r["kind"]: r for r in diff["resources"]}
    assert by_kind["Service"]["state"] == "in-sync"
    assert by_kind["Deployment"]["state"] == "modified"
    assert "-  replicas: 2" in by_kind["Deployment"]["diff"], by_kind["Deployment"]["diff"]
    assert "+  replicas: 5" in by_kind["Deployment"]["diff"]

    # Repair: a sync applies the source again; the edit is undone in the cluster.
    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert (operation["operationType"], operation["state"]) == ("RECONCILE", "COMPLETED"), operation
    with argo.lock:
        app = argo.app("web")
        assert app["status"]["sync"]["status"] == "Synced"
        assert {r["status"] for r in app["status"]["resources"]} == {"Synced"}
        assert not argo.control[("argocd", "web")].live_edits
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_a_deleted_object_and_a_degraded_workload_are_recorded_and_notified(
    gw: GatewayClient, argo: ArgoEmulator, notification_sink: CallbackSink
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)

    argo.degrade("web")
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEGRADED")
    assert "minimum availability" in (record["statusMessage"] or ""), record
    assert record["driftDetected"] is False  # unhealthy, not changed
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DEGRADED",
    )
    report = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")).json()
    workload = next(r for r in report["resources"] if r["kind"] == "Deployment")
    assert (workload["ready"], workload["reason"]) == (False, "Degraded"), workload

    argo.delete_live("web", "Service", "web")
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    assert record["drift"]["differences"][0]["change"] == "missing", record
    assert record["drift"]["differences"][0]["kind"] == "Service"
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)
    diff = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")).json()
    service = next(r for r in diff["resources"] if r["kind"] == "Service")
    assert service["state"] == "missing", service


async def test_argo_cd_refusing_or_hanging_during_polls_changes_nothing_and_backs_off(
    gw: GatewayClient, argo: ArgoEmulator, notification_sink: CallbackSink
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    reconciler: Any = gw.app.state.services.reconciler
    before = await stored(gw, deployment_id)

    # argocd-server answers 503 to everything for 3 s: poll rounds every 0.3 s would be ~10;
    # with the back-off (0.3, 0.6, 1.2, 1.2 …) far fewer.
    argo.down = True
    start_gets, start_unreachable = app_gets(argo), reconciler.stats.unreachable
    await asyncio.sleep(3.0)
    tried = app_gets(argo) - start_gets
    argo.down = False
    assert reconciler.stats.unreachable - start_unreachable >= 2
    assert 2 <= tried <= 6, tried

    # It hangs past the adapter's read timeout (0.5 s): a timeout is no evidence either.
    argo.stall = 1.0
    start_unreachable = reconciler.stats.unreachable
    await until(lambda: reconciler.stats.unreachable >= start_unreachable + 1, 10.0)
    argo.stall = 0.0

    after = await stored(gw, deployment_id)
    for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
        assert after[key] == before[key], (key, before, after)
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []
    assert events(notification_sink, "DeploymentDriftDetected", deployment_id) == []
    # Back: the reconciler reads it again (no crash), and a real change is still seen.
    argo.degrade("web")
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEGRADED")


async def test_a_poll_round_is_one_application_list_not_a_get_per_deployment(
    gw: GatewayClient, argo: ArgoEmulator, notification_sink: CallbackSink
) -> None:
    response = await gw.post(
        PACKAGES,
        json={
            "name": "web",
            "artifactVersion": "1.0.0",
            "packageUri": CHARTS,
            "packageType": "helm",
            "source": {"chart": "web"},
        },
    )
    assert response.status_code == 201, response.text
    package_id = response.json()["packageId"]
    ids = {}
    for name in ("web", "web2", "web3"):
        response = await gw.post(
            DEPLOYMENTS,
            json={"name": name, "namespace": "ran", "packageId": package_id, "values": {}},
        )
        assert response.status_code == 201, response.text
        operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
        assert operation["state"] == "COMPLETED", operation
        ids[name] = str(response.json()["deploymentId"])
    for deployment_id in ids.values():
        await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    await subscribe(gw, notification_sink)

    def count(operation_id: str) -> int:
        return sum(1 for r in argo.requests if r.operation_id == operation_id)

    start = {op: count(f"ApplicationService_{op}") for op in ("List", "Get", "ResourceTree")}
    await asyncio.sleep(1.5)
    seen = {op: count(f"ApplicationService_{op}") - n for op, n in start.items()}
    # Rounds every 0.3 s for 1.5 s: ~5 lists for the three deployments; a read per
    # deployment would have been ~15 GETs and as many resource trees.
    assert 2 <= seen["List"] <= 8, seen
    assert (seen["Get"], seen["ResourceTree"]) == (0, 0), seen

    # A change behind the gateway's back is seen through the list (status.resources' health).
    argo.degrade("web2")
    record = await recorded_until(gw, ids["web2"], lambda d: d["status"] == "DEGRADED")
    assert any(r.get("ready") is False for r in record.get("resources") or [{"ready": False}])
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        ids["web2"],
        lambda e: e["data"]["status"] == "DEGRADED",
    )
    assert (await stored(gw, ids["web"]))["status"] == "DEPLOYED"


async def test_auto_sync_without_self_heal_leaves_an_edit_as_drift_and_repair_syncs_it(
    auto_gw: GatewayClient, argo: ArgoEmulator, notification_sink: CallbackSink
) -> None:
    deployment_id = await deploy(auto_gw)
    await subscribe(auto_gw, notification_sink)
    with argo.lock:
        assert len(argo.app("web")["status"]["history"]) == 1  # Argo CD's own first sync

    argo.edit_live("web", "Deployment", "web", {"spec": {"replicas": 5}})
    record = await recorded_until(auto_gw, deployment_id, lambda d: d["driftDetected"])
    assert record["drift"]["differences"][0]["kind"] == "Deployment", record
    # Argo CD already synced this target once: it reports the edit and leaves it (no
    # selfHeal), so the deployment is not "on its way" but DEPLOYED with drift.
    assert record["status"] == "DEPLOYED", record
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)
    lists = sum(1 for r in argo.requests if r.operation_id == "ApplicationService_List")
    await until(
        lambda: (
            sum(1 for r in argo.requests if r.operation_id == "ApplicationService_List")
            >= lists + 3
        ),
        10.0,
    )
    with argo.lock:
        app = argo.app("web")
        assert "operation" not in app
        assert len(app["status"]["history"]) == 1
        assert app["status"]["sync"]["status"] == "OutOfSync"
    assert (await stored(auto_gw, deployment_id))["status"] == "DEPLOYED"
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []

    # Repair: a sync (auto-sync would not) applies the source again.
    response = await auto_gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await auto_gw.wait_operation(
        auto_gw.operation_id(response), TERMINAL_OPERATION_STATES
    )
    assert (operation["operationType"], operation["state"]) == ("RECONCILE", "COMPLETED"), operation
    with argo.lock:
        app = argo.app("web")
        assert app["status"]["sync"]["status"] == "Synced"
        assert len(app["status"]["history"]) == 2
        assert not argo.control[("argocd", "web")].live_edits
    record = await stored(auto_gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_batched_reads_asking_while_a_list_is_in_flight_share_it(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    # A round of 5 000 deployments is ten batched reads; each lists the whole project.
    argo.stall = 0.2
    first, second = await asyncio.gather(
        adapter.get_deployments(["argocd/a"]), adapter.get_deployments(["argocd/b"])
    )
    assert isinstance(first["argocd/a"], NotFound) and isinstance(second["argocd/b"], NotFound)
    lists = [r for r in argo.requests if r.operation_id == "ApplicationService_List"]
    assert len(lists) == 1, lists
    # Once answered, the next read lists again (nothing is served from an old answer).
    await adapter.get_deployments(["argocd/a"])
    lists = [r for r in argo.requests if r.operation_id == "ApplicationService_List"]
    assert len(lists) == 2, lists

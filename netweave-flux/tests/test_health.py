"""Live health and drift through the gateway's HTTP API with the Flux adapter: the reconciler
watches the Kubernetes API emulator (real Flux CRDs, the simulated helm-controller) while the test
changes things behind the gateway's back with the emulator's API — a workload of the release
deleted, the HelmRelease edited so that helm-controller's upgrades fail until it stalls — and a
subscriber on loopback receives the events. What the cluster holds is checked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import flux_gateway_settings
from flux_sim import FluxSimulator
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from netweave.testing.etsi_notify import CallbackSink
from netweave.testing.gateway import (
    TERMINAL_OPERATION_STATES,
    GatewayClient,
    running_gateway,
)
from netweave.testing.k8s import KubernetesEmulator
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

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
HR = ("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps")


@pytest.fixture
async def gw(kubeconfig: Path, flux: FluxSimulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    settings = flux_gateway_settings(
        tmp_path, kubeconfig, remediation={"upgradeRetries": 0}, timeouts={"read": 0.5, "write": 20}
    )
    fast_polling(settings)
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def deploy(gw: GatewayClient) -> str:
    response = await gw.post(
        PACKAGES,
        json={
            "name": "podinfo",
            "artifactVersion": "6.5.0",
            "packageUri": "https://stefanprodan.github.io/podinfo",
            "packageType": "helm",
            "source": {"chart": "podinfo"},
        },
    )
    assert response.status_code == 201, response.text
    response = await gw.post(
        DEPLOYMENTS,
        json={
            "name": "web",
            "namespace": "apps",
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


async def repair(gw: GatewayClient, deployment_id: str) -> dict[str, Any]:
    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["operationType"] == "RECONCILE"
    return operation


async def test_a_workload_deleted_behind_fluxs_back_is_drift_and_a_forced_upgrade_repairs_it(
    gw: GatewayClient, emulator: KubernetesEmulator, notification_sink: CallbackSink
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    report = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")).json()
    workload = next(r for r in report["resources"] if r["kind"] == "Deployment")
    assert workload["ready"] is True, report  # judged by the Deployment rule, not Flux's word

    # kubectl delete deployment: helm-controller still says Ready=True.
    emulator.delete("apps/v1", "Deployment", "web", "apps")
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    (difference,) = record["drift"]["differences"]
    expected = {"change": "missing", "kind": "Deployment", "name": "web", "namespace": "apps"}
    assert expected.items() <= difference.items(), difference
    assert record["status"] == "DEGRADED", record
    assert "NotFound" in record["statusMessage"]
    hr = emulator.get(*HR)
    assert hr is not None
    assert {c["type"]: c["status"] for c in hr["status"]["conditions"]}["Ready"] == "True"
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DEGRADED",
    )

    # The diff (Helm's stored manifest of the recorded revision vs live) shows it missing.
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 200, response.text
    (resource,) = response.json()["resources"]
    assert (resource["kind"], resource["state"]) == ("Deployment", "missing"), resource

    # Repair: a forced upgrade (forceAt = requestedAt) applies the release's objects again.
    operation = await repair(gw, deployment_id)
    assert operation["state"] == "COMPLETED", operation
    assert emulator.get("apps/v1", "Deployment", "web", "apps") is not None
    hr = emulator.get(*HR)
    assert hr is not None
    annotations = hr["metadata"]["annotations"]
    assert (
        annotations["reconcile.fluxcd.io/forceAt"]
        == (annotations["reconcile.fluxcd.io/requestedAt"])
    )
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_a_helmrelease_edited_until_it_stalls_is_failed_with_drift_and_repaired(
    gw: GatewayClient,
    emulator: KubernetesEmulator,
    notification_sink: CallbackSink,
    kubeconfig: Path,
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)

    # Someone edits the HelmRelease's values with the kubernetes client: every upgrade fails,
    # retries run out: Stalled.
    api = k8s_config.new_client_from_config(str(kubeconfig))
    try:
        k8s_client.CustomObjectsApi(api).patch_namespaced_custom_object(
            "helm.toolkit.fluxcd.io",
            "v2",
            "apps",
            "helmreleases",
            "web",
            {"spec": {"values": {"replicaCount": 1, "simulateFailure": True}}},
        )
    finally:
        api.close()
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")
    hr = emulator.get(*HR)
    assert hr is not None
    conditions = {c["type"]: c["status"] for c in hr["status"]["conditions"]}
    assert (conditions["Ready"], conditions.get("Stalled")) == ("False", "True"), conditions
    assert record["driftDetected"] is True
    # The edited values, and the revisions helm-controller's failed upgrade and rollback made.
    changes = {d["change"] for d in record["drift"]["differences"]}
    assert "values" in changes, record
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "FAILED",
    )
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)

    # Repair writes the recorded values back; helm-controller releases them.
    operation = await repair(gw, deployment_id)
    assert operation["state"] == "COMPLETED", operation
    hr = emulator.get(*HR)
    assert hr is not None
    assert hr["spec"]["values"] == {"replicaCount": 1}
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_the_kubernetes_api_refusing_or_hanging_during_polls_changes_nothing(
    gw: GatewayClient,
    emulator: KubernetesEmulator,
    notification_sink: CallbackSink,
    kubeconfig: Path,
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    reconciler: Any = gw.app.state.services.reconciler
    before = await stored(gw, deployment_id)
    path = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/web"

    refused = emulator.faults.error(503, path=path, method="GET", times=None)
    start = reconciler.stats.unreachable
    # The adapter watches: a label edited on the release's workload is a change it is told
    # about, so the deployment is read (and refused), then retried with back-off.
    api = k8s_config.new_client_from_config(str(kubeconfig))
    try:
        k8s_client.AppsV1Api(api).patch_namespaced_deployment(
            "web", "apps", {"metadata": {"labels": {"touched": "by-hand"}}}
        )
    finally:
        api.close()
    await asyncio.sleep(2.0)
    hits = refused.hits
    refused.remove()
    # Reads every 0.3 s would be ~7 in 2 s; the back-off (0.3, 0.6, 1.2) leaves ~3.
    assert reconciler.stats.unreachable - start >= 2
    assert 2 <= hits <= 5, hits

    hung = emulator.faults.hang(path=path, method="GET", seconds=2.0)
    start = reconciler.stats.unreachable
    await until(lambda: reconciler.stats.unreachable > start, 10.0)
    hung.remove()

    after = await stored(gw, deployment_id)
    for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
        assert after[key] == before[key], (key, before, after)
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []
    assert events(notification_sink, "DeploymentDriftDetected", deployment_id) == []
    # Answering again, a real change is still seen.
    emulator.delete("apps/v1", "Deployment", "web", "apps")
    await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])


async def test_a_kustomizations_workload_deleted_is_drift_and_a_reconcile_request_repairs_it(
    gw: GatewayClient, emulator: KubernetesEmulator, notification_sink: CallbackSink
) -> None:
    response = await gw.post(
        PACKAGES,
        json={
            "name": "webapp",
            "artifactVersion": "1.0.0",
            "packageUri": "https://git.example.org/webapp.git",
            "packageType": "git-repo",
            "source": {"tag": "v1.0.0", "path": "./deploy/overlays/prod"},
        },
    )
    assert response.status_code == 201, response.text
    response = await gw.post(
        DEPLOYMENTS,
        json={
            "name": "shop",
            "namespace": "apps",
            "packageId": response.json()["packageId"],
            "values": {"replicas": "1"},  # postBuild substitutions are strings
        },
    )
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    deployment_id = str(response.json()["deploymentId"])
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    await subscribe(gw, notification_sink)

    emulator.delete("apps/v1", "Deployment", "shop", "apps")
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    assert record["drift"]["differences"][0]["change"] == "missing", record
    assert record["drift"]["differences"][0]["kind"] == "Deployment"
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)
    # kustomize-controller keeps no applied manifests: no diff, a 501 saying why.
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 501, response.text
    assert "Kustomization" in response.json()["detail"], response.text

    # kustomize-controller applies every object on each reconcile: the request is the repair.
    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    assert emulator.get("apps/v1", "Deployment", "shop", "apps") is not None
    ks = emulator.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop", "apps")
    assert ks is not None
    assert "reconcile.fluxcd.io/forceAt" not in ks["metadata"].get("annotations", {})
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record

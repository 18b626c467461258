"""``GET …/nfDeployments/{id}/diff`` with the Flux adapter, through the gateway's HTTP API, on
the Kubernetes API emulator with the real Flux CRDs and the simulated helm-controller, which
keeps each release revision in Helm's storage (Secrets ``sh.helm.release.v1.<release>.v<N>``)
as helm-controller does. Changes are made behind the gateway's back with the ``kubernetes``
client; what the cluster holds is checked beside what the gateway answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import flux_gateway_settings
from flux_sim import FluxSimulator
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from netweave.testing.gateway import (
    TERMINAL_OPERATION_STATES,
    GatewayClient,
    running_gateway,
)
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.polling import until

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
HR = ("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps")


@pytest.fixture
async def gw(kubeconfig: Path, flux: FluxSimulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    # The reconciler is off: the diff is read on request, so nothing else reads meanwhile.
    settings = flux_gateway_settings(tmp_path, kubeconfig, timeouts={"read": 10, "write": 20})
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[Any]:
    api = k8s_config.new_client_from_config(str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


async def deploy(gw: GatewayClient, package: dict[str, Any], name: str, values: Any) -> str:
    response = await gw.post(PACKAGES, json=package)
    assert response.status_code == 201, response.text
    response = await gw.post(
        DEPLOYMENTS,
        json={
            "name": name,
            "namespace": "apps",
            "packageId": response.json()["packageId"],
            "values": values,
        },
    )
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    return str(response.json()["deploymentId"])


async def deploy_web(gw: GatewayClient) -> str:
    package = {
        "name": "podinfo",
        "artifactVersion": "6.5.0",
        "packageUri": "https://stefanprodan.github.io/podinfo",
        "packageType": "helm",
        "source": {"chart": "podinfo"},
    }
    return await deploy(gw, package, "web", {"replicaCount": 1})


async def diff(gw: GatewayClient, deployment_id: str) -> dict[str, Any]:
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_kind(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in body["resources"]}


def helm_head(emulator: KubernetesEmulator) -> tuple[int, str]:
    hr = emulator.get(*HR)
    assert hr is not None
    head = ((hr.get("status") or {}).get("history") or [{}])[0]
    return int(head.get("version") or 0), str(head.get("status") or "")


async def test_an_edited_value_shows_in_the_diff_until_repaired_and_deleted_objects_are_missing(
    gw: GatewayClient, emulator: KubernetesEmulator, flux: FluxSimulator, kube: Any
) -> None:
    flux.config_chart_versions.add("6.5.0")  # the release holds a Deployment and a ConfigMap
    deployment_id = await deploy_web(gw)
    # helm-controller's storage holds revision 1 (what the diff reads as the desired state).
    secret = emulator.get("v1", "Secret", "sh.helm.release.v1.web.v1", "apps")
    assert secret is not None and secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["labels"] | {"modifiedAt": ""} == {
        "owner": "helm",
        "name": "web",
        "version": "1",
        "status": "deployed",
        "modifiedAt": "",
    }

    # No change: every object in sync, nothing to show.
    body = await diff(gw, deployment_id)
    assert (body["revision"], body["driftDetected"]) == (1, False), body["resources"]
    assert {
        (r["kind"], r["namespace"], r["name"], r["state"], r["diff"]) for r in body["resources"]
    } == {
        ("Deployment", "apps", "web", "in-sync", ""),
        ("ConfigMap", "apps", "web-cfg", "in-sync", ""),
    }

    # A value edited on the workload with the kubernetes client (as kubectl scale/label would).
    apps = k8s_client.AppsV1Api(kube)
    await asyncio.to_thread(
        apps.patch_namespaced_deployment,
        "web",
        "apps",
        {"spec": {"replicas": 3}, "metadata": {"labels": {"app.kubernetes.io/managed-by": "me"}}},
    )
    live = emulator.get("apps/v1", "Deployment", "web", "apps")
    assert live is not None and live["spec"]["replicas"] == 3
    body = await diff(gw, deployment_id)
    assert body["driftDetected"] is True, body
    resources = by_kind(body)
    assert resources["ConfigMap"]["state"] == "in-sync", body
    edited = resources["Deployment"]
    assert edited["state"] == "modified", body
    text = edited["diff"]
    assert "--- desired/deployment/apps/web" in text and "+++ live/deployment/apps/web" in text
    assert "-  replicas: 1\n" in text and "+  replicas: 3\n" in text, text
    assert "-    app.kubernetes.io/managed-by: Helm\n" in text, text
    assert "+    app.kubernetes.io/managed-by: me\n" in text, text
    # Fields the server added (status, defaults, ids) are not drift.
    assert "status" not in text and "uid" not in text and "resourceVersion" not in text, text

    # The repair (a forced upgrade) applies the release's objects again: in sync.
    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    live = emulator.get("apps/v1", "Deployment", "web", "apps")
    assert live is not None and live["spec"]["replicas"] == 1
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    body = await diff(gw, deployment_id)
    assert body["driftDetected"] is False, body
    assert {r["state"] for r in body["resources"]} == {"in-sync"}, body

    # Objects deleted: missing, with the desired object as the removed side.
    core = k8s_client.CoreV1Api(kube)
    await asyncio.to_thread(core.delete_namespaced_config_map, "web-cfg", "apps")
    assert emulator.get("v1", "ConfigMap", "web-cfg", "apps") is None
    resources = by_kind(await diff(gw, deployment_id))
    assert resources["ConfigMap"]["state"] == "missing"
    assert "-data:\n-  chartVersion: 6.5.0\n" in resources["ConfigMap"]["diff"]
    assert resources["Deployment"]["state"] == "in-sync"
    await asyncio.to_thread(apps.delete_namespaced_deployment, "web", "apps")
    await until(lambda: emulator.get("apps/v1", "Deployment", "web", "apps") is None)
    resources = by_kind(await diff(gw, deployment_id))
    assert resources["Deployment"]["state"] == "missing", resources
    assert "-kind: Deployment\n" in resources["Deployment"]["diff"]


async def test_the_desired_state_is_the_revision_the_gateway_recorded(
    gw: GatewayClient, emulator: KubernetesEmulator, kube: Any
) -> None:
    deployment_id = await deploy_web(gw)
    custom = k8s_client.CustomObjectsApi(kube)
    core = k8s_client.CoreV1Api(kube)

    async def edit_values(replicas: int, revision: int) -> None:
        await asyncio.to_thread(
            custom.patch_namespaced_custom_object,
            "helm.toolkit.fluxcd.io",
            "v2",
            "apps",
            "helmreleases",
            "web",
            {"spec": {"values": {"replicaCount": replicas}}},
        )
        await until(lambda: helm_head(emulator) == (revision, "deployed"))

    # The HelmRelease edited behind the gateway's back: helm-controller releases revision 2
    # with 2 replicas. The desired state stays the gateway's revision 1 (1 replica).
    await edit_values(2, 2)
    body = await diff(gw, deployment_id)
    assert body["revision"] == 1, body
    edited = by_kind(body)["Deployment"]
    assert edited["state"] == "modified", body
    assert "-  replicas: 1\n" in edited["diff"] and "+  replicas: 2\n" in edited["diff"]

    # Revision 1 gone from Helm's storage (pruned): the newest stored revision that runs what
    # netweave wrote (revision 3, the values set back to 1 replica) is the desired state, not
    # the newest (4, 3 replicas).
    await edit_values(1, 3)
    await edit_values(3, 4)
    await asyncio.to_thread(core.delete_namespaced_secret, "sh.helm.release.v1.web.v1", "apps")
    edited = by_kind(await diff(gw, deployment_id))["Deployment"]
    assert edited["state"] == "modified"
    assert "-  replicas: 1\n" in edited["diff"] and "+  replicas: 3\n" in edited["diff"]

    # No stored revision runs it: nothing to compare with, said so (409, not a guess).
    await asyncio.to_thread(core.delete_namespaced_secret, "sh.helm.release.v1.web.v3", "apps")
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "no longer in Helm's storage" in response.json()["detail"], response.text


async def test_a_kustomization_has_no_diff_and_says_why(gw: GatewayClient) -> None:
    package = {
        "name": "webapp",
        "artifactVersion": "1.0.0",
        "packageUri": "https://git.example.org/webapp.git",
        "packageType": "git-repo",
        "source": {"tag": "v1.0.0", "path": "./deploy"},
    }
    deployment_id = await deploy(gw, package, "shop", {"replicas": "1"})
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 501, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert "Kustomization" in problem["detail"], problem
    assert "keeps no record of the manifests it applied" in problem["detail"], problem
    # The adapter declares the capability (HelmRelease deployments have a diff).
    adapters = (await gw.get("/o2dms/v1/adapters")).json()
    items = adapters["items"] if isinstance(adapters, dict) else adapters
    assert "drift" in items[0]["capabilities"]

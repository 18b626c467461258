"""End to end through the gateway's HTTP API: the real app (Litestar, SQLite store, operation
worker) with only the Flux adapter, loaded through its entry point from ``plugins.dms``, writing
to the K8s emulator (real Flux CRDs) where the simulated Flux reconciles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import flux_gateway_settings
from flux_sim import FluxSimulator
from netweave.testing.gateway import GatewayClient, running_gateway
from netweave.testing.k8s import KubernetesEmulator

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"


async def settle(gateway: GatewayClient, url: str, revision: int) -> dict[str, Any]:
    """Wait until the simulated Flux has reconciled ``url`` to ``revision``."""
    deadline = time.monotonic() + 20
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await gateway.get(url)).json()
        if body["status"] == "DEPLOYED" and body["revision"] == revision:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not reach revision {revision}: {body}")


@pytest.fixture
async def gateway(
    kubeconfig: Path, flux: FluxSimulator, tmp_path: Path
) -> AsyncIterator[GatewayClient]:
    settings = flux_gateway_settings(tmp_path, kubeconfig)
    async with running_gateway(tmp_path, settings=settings) as gw:
        yield gw


async def test_lifecycle_through_the_gateway_api(
    gateway: GatewayClient, emulator: KubernetesEmulator, flux: FluxSimulator
) -> None:
    adapters = (await gateway.get("/o2dms/v1/adapters")).json()
    items = adapters["items"] if isinstance(adapters, dict) else adapters
    assert [(a["type"], a["name"]) for a in items] == [("flux", "flux")]
    assert "suspend" in items[0]["capabilities"]

    response = await gateway.post(
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
    package = response.json()
    assert package["extensions"]["chart"] == "podinfo"
    assert emulator.get(
        "source.toolkit.fluxcd.io/v1", "HelmRepository", "podinfo-6.5.0", "flux-system"
    )

    response = await gateway.post(
        DEPLOYMENTS,
        json={
            "name": "web",
            "namespace": "apps",
            "packageId": package["packageId"],
            "values": {"replicaCount": 1},
        },
    )
    assert response.status_code == 201, response.text
    deployment_id = response.json()["deploymentId"]
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    url = f"{DEPLOYMENTS}/{deployment_id}"
    body = await settle(gateway, url, 1)
    assert body["values"] == {"replicaCount": 1}

    response = await gateway.post(f"{url}/scale", json={"replicas": 2})
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    body = await settle(gateway, url, 2)
    assert body["values"] == {"replicaCount": 2}

    history = (await gateway.get(f"{url}/history")).json()
    assert [r["revision"] for r in history["revisions"]] == [2, 1]

    response = await gateway.post(f"{url}/rollback", json={"revision": 0})
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    body = await settle(gateway, url, 3)
    assert body["values"] == {"replicaCount": 1}

    logs = await gateway.get(f"{url}/logs", params={"tailLines": 5})
    assert logs.status_code == 200, logs.text
    assert logs.text.strip()

    # Suspend and resume through PATCH (capability "suspend"): Flux's spec.suspend follows.
    response = await gateway.patch(url, json={"suspend": True})
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    release = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps")
    assert release is not None
    assert release["spec"].get("suspend") is True
    assert (await gateway.get(url)).json()["status"] == "SUSPENDED"
    response = await gateway.patch(url, json={"suspend": False})
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    release = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps")
    assert release is not None
    assert not release["spec"].get("suspend")

    response = await gateway.delete(url)
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    assert emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps") is None
    assert "apps/web" in flux.uninstalled
    assert (await gateway.get(url)).status_code == 404


async def test_client_errors_are_problem_responses(gateway: GatewayClient) -> None:
    response = await gateway.post(
        PACKAGES,
        json={
            "name": "redis",
            "artifactVersion": "1.0.0",
            "packageUri": "https://registry.example.org/redis",
            "packageType": "oci",
        },
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "oci://" in response.json()["detail"]

    response = await gateway.post(
        PACKAGES,
        data={"name": "x", "artifactVersion": "1.0.0", "packageType": "helm"},
        files={"chart": ("x-1.0.0.tgz", b"\x1f\x8b not really", "application/gzip")},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "registers Flux sources" in response.json()["detail"]

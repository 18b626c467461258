"""End to end through the gateway's HTTP API: the real app (Litestar, SQLite store, operation
worker) with only this adapter, loaded through its entry point from the ``plugins.dms`` settings,
driving the Argo CD emulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argo_emulator import ArgoEmulator
from conftest import CHARTS

TOKEN = "argocd-e2e-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"


class Gateway:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, method: str, url: str, **kwargs: Any) -> Any:
        return await self.client.request(method, url, headers=AUTH, **kwargs)

    async def wait(self, response: Any) -> dict[str, Any]:
        """Wait for the operation a 201/202 points at; return it when it is terminal."""
        link = response.headers.get("link") or response.headers["location"]
        operation_id = link.split("/operations/")[1].split(">")[0]
        body: dict[str, Any] = {}
        for _ in range(500):  # bounded: 10 s
            body = (await self.call("GET", f"/o2dms/v1/operations/{operation_id}")).json()
            if body["state"] in ("COMPLETED", "FAILED_TEMP", "FAILED"):
                return body
            await asyncio.sleep(0.02)
        raise AssertionError(f"operation {operation_id} stayed {body.get('state')}")


@pytest.fixture
async def gateway(argo: ArgoEmulator, tmp_path: Path) -> AsyncIterator[Gateway]:
    from litestar.testing import AsyncTestClient
    from netweave.api.app import create_app
    from netweave.config import Settings

    settings = Settings.model_validate(
        {
            "dataDir": str(tmp_path / "data"),
            "api": {"token": TOKEN},
            "operations": {"pollInterval": 0.02, "leaseSeconds": 5, "maxAttempts": 2},
            "plugins": {
                "dms": [
                    {
                        "name": "argo",
                        "type": "argocd",
                        "default": True,
                        "config": {
                            "serverUrl": argo.url,
                            "authToken": "static-token",
                            "defaultProject": "default",
                            "http": {"backoff": 0},
                        },
                    }
                ]
            },
        }
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        yield Gateway(client)


async def test_lifecycle_through_the_gateway_api(gateway: Gateway, argo: ArgoEmulator) -> None:
    adapters = (await gateway.call("GET", "/o2dms/v1/adapters")).json()
    (argo_info,) = adapters["items"] if isinstance(adapters, dict) else adapters
    assert argo_info["type"] == "argocd"

    response = await gateway.call(
        "POST",
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
    package = response.json()
    assert package["extensions"]["argocd.chart"] == "web"

    response = await gateway.call(
        "POST",
        DEPLOYMENTS,
        json={
            "name": "web",
            "namespace": "ran",
            "packageId": package["packageId"],
            "values": {"replicaCount": 1},
        },
    )
    assert response.status_code == 201, response.text
    deployment_id = response.json()["deploymentId"]
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    assert argo.app("web")["spec"]["source"]["helm"]["valuesObject"] == {"replicaCount": 1}

    # Reads reconcile with Argo CD: DEPLOYING while the controller works, then DEPLOYED.
    url = f"{DEPLOYMENTS}/{deployment_id}"
    assert (await gateway.call("GET", url)).json()["status"] == "DEPLOYING"
    argo.settle("web")
    body = (await gateway.call("GET", url)).json()
    assert (body["status"], body["revision"]) == ("DEPLOYED", 1)

    response = await gateway.call("POST", f"{url}/scale", json={"replicas": 3})
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    argo.settle("web")
    body = (await gateway.call("GET", url)).json()
    assert body["values"] == {"replicaCount": 3}
    assert body["revision"] == 2

    history = (await gateway.call("GET", f"{url}/history")).json()
    assert [r["revision"] for r in history["revisions"]] == [1, 2]

    response = await gateway.call("POST", f"{url}/rollback", json={"revision": 0})
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    assert (await gateway.call("GET", f"{url}/status")).json()["status"] == "ROLLING_BACK"
    argo.settle("web")
    body = (await gateway.call("GET", url)).json()
    assert (body["status"], body["values"]) == ("DEPLOYED", {"replicaCount": 1})

    response = await gateway.call("DELETE", url)
    assert response.status_code == 202, response.text
    assert (await gateway.wait(response))["state"] == "COMPLETED"
    assert argo.app("web")["metadata"]["deletionTimestamp"]
    argo.tick("web")
    assert argo.apps == {}
    assert (await gateway.call("GET", url)).status_code == 404


async def test_client_errors_are_problem_responses(gateway: Gateway, argo: ArgoEmulator) -> None:
    response = await gateway.call(
        "POST",
        PACKAGES,
        json={
            "name": "web",
            "artifactVersion": "9.9.9",
            "packageUri": CHARTS,
            "packageType": "helm",
            "source": {"chart": "web"},
        },
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "no version '9.9.9'" in response.json()["detail"]

    response = await gateway.call(
        "POST",
        PACKAGES,
        json={
            "name": "web",
            "artifactVersion": "1.0.0",
            "packageUri": CHARTS,
            "packageType": "oci",
        },
    )
    assert response.status_code == 400, response.text

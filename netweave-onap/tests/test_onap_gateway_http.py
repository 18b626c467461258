"""End to end through the gateway's HTTP API: the app loads both ONAP instances from
configuration through the ``onap`` entry point, and the SMO's calls reach the emulators."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from netweave.api.app import create_app
from netweave.config import Settings
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.samples import MODEL
from onap_emulators.so import SoEmulator

TOKEN = "onap-e2e-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
FAST = {"pollInterval": 0.02, "timeouts": {"read": 5, "write": 20}, "http": {"backoff": 0.01}}


def settings(tmp_path: Path, k8s: K8sPluginEmulator, so: SoEmulator) -> Settings:
    return Settings.model_validate(
        {
            "dataDir": str(tmp_path / "data"),
            "api": {"token": TOKEN},
            "operations": {"pollInterval": 0.02, "leaseSeconds": 5, "maxAttempts": 2},
            "plugins": {
                "dms": [
                    {
                        "name": "onap-edge",
                        "type": "onap",
                        "default": True,
                        "config": {
                            "backend": "k8splugin",
                            "k8sPluginUrl": k8s.url,  # type: ignore[attr-defined]
                            "cloudRegion": k8s.cloud_region,
                            **FAST,
                        },
                    },
                    {
                        "name": "onap-so",
                        "type": "onap",
                        "config": {
                            "backend": "so",
                            "soUrl": so.url,
                            "username": so.username,
                            "password": so.password,
                            "cloudRegion": "k8sregionfour",
                            "tenantId": "tenant-1",
                            **FAST,
                        },
                    },
                ]
            },
        }
    )


async def wait_operation(client: AsyncTestClient[Litestar], response: Any) -> dict[str, Any]:
    link = response.headers.get("link") or response.headers["location"]
    operation_id = link.split("/operations/")[1].split(">")[0]
    body: dict[str, Any] = {}
    for _ in range(500):
        body = (await client.get(f"/o2dms/v1/operations/{operation_id}", headers=AUTH)).json()
        if body["state"] in ("COMPLETED", "FAILED", "FAILED_TEMP"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation {operation_id} stayed {body.get('state')}")


async def test_smo_drives_both_onap_backends(
    tmp_path: Path,
    k8s_backend: K8sPluginEmulator,
    so_backend: SoEmulator,
    charts: Path,
) -> None:
    app = create_app(settings(tmp_path, k8s_backend, so_backend))
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        adapters = (await client.get("/o2dms/v1/adapters", headers=AUTH)).json()["items"]
        by_name = {a["name"]: a for a in adapters}
        assert by_name["onap-edge"]["type"] == by_name["onap-so"]["type"] == "onap"
        assert "rollback" in by_name["onap-edge"]["capabilities"]
        assert "rollback" not in by_name["onap-so"]["capabilities"]
        assert by_name["onap-edge"]["health"]["healthy"] is True
        assert by_name["onap-so"]["health"]["healthy"] is True

        # -- k8s plugin: chart upload, deploy, update, rollback, delete --------------------
        archive = (charts / "hello-world-0.1.0.tgz").read_bytes()
        response = await client.post(
            PACKAGES,
            headers=AUTH,
            data={"name": "hello-world", "artifactVersion": "0.1.0", "adapter": "onap-edge"},
            files={"chart": ("hello-world-0.1.0.tgz", archive, "application/gzip")},
        )
        assert response.status_code == 201, response.text
        package_id = response.json()["packageId"]
        assert ("hello-world", "0.1.0") in k8s_backend.definitions

        response = await client.post(
            DEPLOYMENTS,
            headers=AUTH,
            json={
                "name": "web",
                "namespace": "ran",
                "packageId": package_id,
                "values": {"replicaCount": 2},
            },
        )
        assert response.status_code == 201, response.text
        deployment_id = response.json()["deploymentId"]
        assert (await wait_operation(client, response))["state"] == "COMPLETED"
        url = f"{DEPLOYMENTS}/{deployment_id}"
        got = (await client.get(url, headers=AUTH)).json()
        assert (got["status"], got["revision"]) == ("DEPLOYED", 1)
        (instance,) = k8s_backend.instances.values()
        assert instance.data["namespace"] == "ran"

        response = await client.patch(url, headers=AUTH, json={"values": {"replicaCount": 3}})
        assert response.status_code == 202, response.text
        assert (await wait_operation(client, response))["state"] == "COMPLETED"
        response = await client.post(f"{url}/rollback", headers=AUTH, json={"revision": 0})
        assert response.status_code == 202, response.text
        assert (await wait_operation(client, response))["state"] == "COMPLETED"
        got = (await client.get(url, headers=AUTH)).json()
        assert got["revision"] == 3 and got["status"] == "DEPLOYED"
        history = (await client.get(f"{url}/history", headers=AUTH)).json()
        assert [r["revision"] for r in history["revisions"]] == [1, 2, 3]

        response = await client.post(f"{url}/scale", headers=AUTH, json={"replicas": 2})
        assert response.status_code == 501
        assert response.headers["content-type"].startswith("application/problem+json")

        response = await client.delete(url, headers=AUTH)
        assert (await wait_operation(client, response))["state"] == "COMPLETED"
        assert k8s_backend.instances == {}
        assert (await client.get(url, headers=AUTH)).status_code == 404

        # -- SO: model reference, deploy, delete ----------------------------------------
        response = await client.post(
            PACKAGES,
            headers=AUTH,
            json={
                "name": "cu-service",
                "artifactVersion": "2.0",
                "adapter": "onap-so",
                "packageType": "sdc-service",
                "packageUri": "sdc:services/beb1259e-dad8-4ee0-a40e-1af20f775d54",
                "source": copy.deepcopy(MODEL),
            },
        )
        assert response.status_code == 201, response.text
        so_package = response.json()["packageId"]
        response = await client.post(
            PACKAGES,
            headers=AUTH,
            data={"name": "cu-archive", "artifactVersion": "1.0", "adapter": "onap-so"},
            files={"chart": ("cu.tgz", archive, "application/gzip")},
        )
        assert response.status_code == 400
        assert "SDC" in response.json()["detail"]

        response = await client.post(
            DEPLOYMENTS,
            headers=AUTH,
            json={"name": "cu-1", "namespace": "ran", "packageId": so_package},
        )
        assert response.status_code == 201, response.text
        assert (await wait_operation(client, response))["state"] == "COMPLETED"
        so_url = f"{DEPLOYMENTS}/{response.json()['deploymentId']}"
        got = (await client.get(so_url, headers=AUTH)).json()
        assert got["status"] == "DEPLOYED"
        assert len(so_backend.instances) == 1
        response = await client.delete(so_url, headers=AUTH)
        assert (await wait_operation(client, response))["state"] == "COMPLETED"
        assert so_backend.instances == {}

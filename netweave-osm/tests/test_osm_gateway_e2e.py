"""End to end through the gateway's HTTP API: the real app loads the ``osm`` adapter through its
entry point from a configuration file (password from the environment) and drives the emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient
from netweave.api.app import create_app
from netweave.config import Settings, load_settings
from osm_emulator import OsmNbiEmulator
from osm_packages import archive, knf_vnfd, nsd

TOKEN = "osm-e2e-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED"})


async def _wait(client: AsyncTestClient[Any], response: Any) -> dict[str, Any]:
    link = response.headers.get("link") or response.headers["location"]
    operation_id = link.split("/operations/")[1].split(">")[0]
    for _ in range(500):
        body: dict[str, Any] = (
            await client.get(f"/o2dms/v1/operations/{operation_id}", headers=AUTH)
        ).json()
        if body["state"] in TERMINAL:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation {operation_id} did not finish: {body}")


def _settings(emulator: OsmNbiEmulator, tmp_path: Path) -> Settings:
    config = tmp_path / "netweave.yaml"
    config.write_text(
        f"""
operations: {{pollInterval: 0.02}}
plugins:
  dms:
    - name: osm-lab
      type: osm
      default: true
      config:
        nbiUrl: {emulator.url}
        username: {emulator.username}
        password: ${{OSM_TEST_PASSWORD}}
        vimAccount: k8s-vim
        pollingInterval: 0.02
        http: {{retries: 1, backoff: 0.01}}
"""
    )
    return load_settings(
        config,
        data_dir=tmp_path / "data",
        env={"OSM_TEST_PASSWORD": emulator.password, "NETWEAVE_API_TOKEN": TOKEN},
    )


async def _onboard(client: AsyncTestClient[Any], tmp_path: Path) -> list[str]:
    """Upload the KNF and the NS package over HTTP; returns their package ids."""
    vnf_archive = archive(tmp_path, knf_vnfd("ldap-knf", {"ldap": "bitnami/openldap:1.2.7"}))
    ns_archive = archive(tmp_path, nsd("ldap-ns", {"ldap": "ldap-knf"}))
    package_ids = []
    for name, path, kind in (("ldap-knf", vnf_archive, "vnfd"), ("ldap-ns", ns_archive, "nsd")):
        response = await client.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            headers=AUTH,
            data={"name": name, "artifactVersion": "1.0", "packageType": kind},
            files={"package": (path.name, path.read_bytes(), "application/gzip")},
        )
        assert response.status_code == 201, response.text
        package_ids.append(response.json()["packageId"])
    return package_ids


async def test_gateway_drives_osm(emulator: OsmNbiEmulator, tmp_path: Path) -> None:
    settings = _settings(emulator, tmp_path)
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        adapters = (await client.get("/o2dms/v1/adapters", headers=AUTH)).json()
        assert "osm-lab" in str(adapters)
        package_ids = await _onboard(client, tmp_path)
        assert len(emulator.vnfds) == 1 and len(emulator.nsds) == 1

        response = await client.post(
            "/o2dms/v1/nfDeployments",
            headers=AUTH,
            json={
                "name": "ldap1",
                "namespace": "ran",
                "packageId": package_ids[1],
                "values": {"replicaCount": 1},
            },
        )
        assert response.status_code == 201, response.text
        deployment_id = response.json()["deploymentId"]
        assert (await _wait(client, response))["state"] == "COMPLETED"
        url = f"/o2dms/v1/nfDeployments/{deployment_id}"
        deployed = (await client.get(url, headers=AUTH)).json()
        assert deployed["status"] == "DEPLOYED", deployed
        (nsr,) = emulator.nsrs.values()
        assert nsr["nsState"] == "READY"

        response = await client.post(f"{url}/scale", headers=AUTH, json={"replicas": 3})
        assert response.status_code == 202, response.text
        assert (await _wait(client, response))["state"] == "COMPLETED"
        assert emulator.helm[nsr["_id"]]["ldap/ldap"][-1] == {"replicaCount": 3}

        response = await client.post(f"{url}/rollback", headers=AUTH, json={"revision": 0})
        assert response.status_code == 202, response.text
        assert (await _wait(client, response))["state"] == "COMPLETED"
        assert emulator.helm[nsr["_id"]]["ldap/ldap"][-1] == {"replicaCount": 1}

        history = (await client.get(f"{url}/history", headers=AUTH)).json()
        assert [r["status"] for r in history["revisions"]] == ["COMPLETED"] * 3

        # A package in use cannot go.
        response = await client.delete(
            f"/o2dms/v1/nfDeploymentDescriptors/{package_ids[1]}", headers=AUTH
        )
        assert response.status_code == 409, response.text

        response = await client.delete(url, headers=AUTH)
        assert response.status_code == 202, response.text
        assert (await _wait(client, response))["state"] == "COMPLETED"
        assert (await client.get(url, headers=AUTH)).status_code == 404
        assert emulator.nsrs == {}
        for package_id in reversed(package_ids):
            response = await client.delete(
                f"/o2dms/v1/nfDeploymentDescriptors/{package_id}", headers=AUTH
            )
            assert response.status_code == 204, response.text
        assert emulator.vnfds == {} and emulator.nsds == {}


async def test_failed_instantiation_then_retry_through_the_api(
    emulator: OsmNbiEmulator, tmp_path: Path
) -> None:
    settings = _settings(emulator, tmp_path)
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        _, package_id = await _onboard(client, tmp_path)
        emulator.plan("instantiate", "FAILED", "KDU ldap: helm install failed: quota exceeded")
        emulator.plan("terminate", "FAILED", "VIM timeout")  # the broken NS stays in OSM
        response = await client.post(
            "/o2dms/v1/nfDeployments",
            headers=AUTH,
            json={"name": "ldap2", "namespace": "ran", "packageId": package_id},
        )
        assert response.status_code == 201, response.text
        deployment_id = response.json()["deploymentId"]
        operation = await _wait(client, response)
        assert operation["state"] == "FAILED_TEMP"
        assert "quota exceeded" in operation["error"]["detail"]
        url = f"/o2dms/v1/nfDeployments/{deployment_id}"
        failed = (await client.get(url, headers=AUTH)).json()
        assert failed["status"] == "FAILED" and "quota exceeded" in failed["statusMessage"]
        (broken,) = emulator.nsrs

        # ETSI retry: the same operation again (same idempotency key) finds the broken NS,
        # removes it and instantiates anew: one NS in OSM, deployed.
        retry = await client.post(
            f"/o2dms/v1/operations/{operation['operationId']}/retry", headers=AUTH
        )
        assert retry.status_code in (200, 202), retry.text
        for _ in range(500):
            operation = (
                await client.get(f"/o2dms/v1/operations/{operation['operationId']}", headers=AUTH)
            ).json()
            if operation["state"] in TERMINAL:
                break
            await asyncio.sleep(0.02)
        assert operation["state"] == "COMPLETED", operation
        assert broken not in emulator.nsrs and len(emulator.nsrs) == 1
        assert (await client.get(url, headers=AUTH)).json()["status"] == "DEPLOYED"

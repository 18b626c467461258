"""Ownership: every package and deployment records its adapter instance; requests go there."""

from __future__ import annotations

from pathlib import Path

from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.problems import assert_problem

PKGS = "/o2dms/v1/nfDeploymentDescriptors"
BASE = "/o2dms/v1/nfDeployments"


async def test_requests_go_to_the_owning_instance(gw2: Gateway) -> None:
    east, west = gw2.adapters["east"], gw2.adapters["west"]
    await gw2.register_package("app", "1.0.0", adapter="west")
    await gw2.register_package("db", "1.0.0")  # default: east
    assert set(west.packages) == {"app:1.0.0"}
    assert set(east.packages) == {"db:1.0.0"}
    deployment, operation = await gw2.deploy("app-1.0.0")
    assert operation["state"] == "COMPLETED"
    assert deployment["adapter"] == "west"
    assert "default/web" in west.releases
    assert east.releases == {}
    stored = await gw2.store.get_deployment(deployment["deploymentId"])
    assert stored is not None
    assert (stored.adapter, stored.backend_ref) == ("west", "default/web")
    url = f"{BASE}/{deployment['deploymentId']}"
    await gw2.get(url)
    assert west.calls_to("get_deployment")
    assert not east.calls_to("get_deployment")
    response = await gw2.delete(url)
    await gw2.wait_operation(response.json()["operationId"])
    assert west.releases == {}
    response = await gw2.delete(f"{PKGS}/app-1.0.0")
    assert response.status_code == 204
    assert west.packages == {}
    assert set(east.packages) == {"db:1.0.0"}
    listed = (await gw2.get(PKGS, params={"adapter": "east"})).json()
    assert [p["packageId"] for p in listed["items"]] == ["db-1.0.0"]


async def test_naming_another_adapter_than_the_package_owner_is_422(gw2: Gateway) -> None:
    # Well-formed by the document, refused for what it names: 422.
    await gw2.register_package("app", "1.0.0", adapter="west")
    body = {"name": "web", "packageId": "app-1.0.0", "adapter": "east"}
    assert_problem(await gw2.post(BASE, json=body), 422, "adapter")
    body["adapter"] = "north"
    assert_problem(await gw2.post(BASE, json=body), 422, "adapter")
    assert (await gw2.store.list_deployments()).total == 0


async def test_same_name_in_two_instances(gw2: Gateway) -> None:
    await gw2.register_package("app", "1.0.0", adapter="west")
    await gw2.register_package("db", "1.0.0", adapter="east")
    await gw2.deploy("app-1.0.0", name="web")
    _, operation = await gw2.deploy("db-1.0.0", name="web")
    assert operation["state"] == "COMPLETED"
    assert (await gw2.store.list_deployments()).total == 2


async def test_object_of_an_adapter_no_longer_configured_is_503(tmp_path: Path) -> None:
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("old"), MemoryAdapter("new")]
    ) as gw:
        await gw.register_package("app", "1.0.0", adapter="old")
        deployment, _ = await gw.deploy("app-1.0.0")
    async with running_gateway(tmp_path, adapters=[MemoryAdapter("new")]) as gw:
        url = f"{BASE}/{deployment['deploymentId']}"
        body = assert_problem(await gw.get(url), 503)
        assert body["details"]["adapter"] == "old"
        assert_problem(await gw.delete(url), 503)
        # the package is still readable from the store (no backend call needed)
        assert (await gw.get(f"{PKGS}/app-1.0.0")).status_code == 200


async def test_no_default_and_no_adapter_named_is_422(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, adapters=[MemoryAdapter("a"), MemoryAdapter("b")]) as gw:
        response = await gw.post(
            PKGS, json={"name": "app", "artifactVersion": "1", "packageUri": "oci://x/app"}
        )
        assert_problem(response, 422, "adapter")
        assert (await gw.store.list_packages()).total == 0

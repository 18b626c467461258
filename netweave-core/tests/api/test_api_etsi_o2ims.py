"""O2ims discovery of the ETSI face: one DeploymentManagerInfo per adapter instance whose
``serviceUri`` is a working apiRoot of ``vnflcm`` restricted to that instance (two memory
adapters), auth required, unknown ids a 404 problem."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import sol003_vnflcm_contract
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
O2IMS = "/o2ims-infrastructureInventory/v1"
HEADERS = {"Version": "2.3.0", "Accept": "application/json"}
REQUIRED = {"deploymentManagerId", "name", "description", "oCloudId", "serviceUri"}


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[Gateway]:
    adapters = [MemoryAdapter("east"), MemoryAdapter("west")]
    async with running_gateway(tmp_path, adapters=adapters, default="east") as gw:
        yield gw


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol003_vnflcm_contract(SHARED)


def local(gw: Gateway, uri: str) -> str:
    """A URI the gateway announced, as a path of the in-process client."""
    base = str(gw.client.base_url).rstrip("/")
    assert uri.startswith(base + "/"), (uri, base)
    return uri[len(base) :]


async def lcm(
    gw: Gateway, contract: ContractValidator, root: str, method: str, path: str, body: Any = None
) -> httpx.Response:
    response = await gw.request(method, f"{root}/vnflcm/v2{path}", json=body, headers=HEADERS)
    contract.validate_response(
        method,
        path,
        response.status_code,
        response.json() if response.content else None,
        headers=dict(response.headers),
    )
    return response


async def test_one_manager_per_adapter_instance(two: Gateway) -> None:
    listed = await two.get(f"{O2IMS}/deploymentManagers")
    assert listed.status_code == 200, listed.text
    managers = {m["deploymentManagerId"]: m for m in listed.json()}
    assert set(managers) == {"east", "west"}
    for name, info in managers.items():
        assert set(info) >= REQUIRED and info["supportedLocations"]
        assert info["extensions"]["profileName"] == "ETSI_NFV"
        assert info["extensions"]["default"] is (name == "east")
        assert "deployment-lifecycle" in info["capabilities"]["operations"]
    assert "gatewayApiRoot" in managers["east"]["extensions"]
    assert "gatewayApiRoot" not in managers["west"]["extensions"]

    one = await two.get(f"{O2IMS}/deploymentManagers/west")
    assert one.status_code == 200 and one.json() == managers["west"]
    chosen = await two.get(
        f"{O2IMS}/deploymentManagers", params={"filter": "(eq,deploymentManagerId,west)"}
    )
    assert [m["deploymentManagerId"] for m in chosen.json()] == ["west"]
    narrow = await two.get(f"{O2IMS}/deploymentManagers", params={"fields": "extensions"})
    assert narrow.status_code == 400  # attribute selectors are not served (docs/etsi.md)
    bad = await two.get(f"{O2IMS}/deploymentManagers", params={"filter": "(eq,nope,1)"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"

    versions = await two.get(f"{O2IMS}/api_versions")
    assert versions.status_code == 200 and versions.json()["apiVersions"][0]["version"]


async def test_service_uri_is_a_working_api_root_of_that_instance(
    two: Gateway, contract: ContractValidator
) -> None:
    await two.register_package("app", "1.0.0", adapter="east")
    await two.register_package("web", "2.0.0", adapter="west")
    managers = {
        m["deploymentManagerId"]: m for m in (await two.get(f"{O2IMS}/deploymentManagers")).json()
    }
    east = local(two, managers["east"]["serviceUri"])
    west = local(two, managers["west"]["serviceUri"])

    versions = await two.get(f"{west}/vnflcm/v2/api_versions")
    assert versions.status_code == 200, versions.text
    assert versions.json()["uriPrefix"] == managers["west"]["serviceUri"] + "/vnflcm/v2"
    for major in (1, 2):
        answer = await two.get(f"{west}/vnflcm/v{major}/api_versions")
        assert answer.json()["uriPrefix"] == f"{managers['west']['serviceUri']}/vnflcm/v{major}"
    assert (await two.get(f"{west}/vnflcm/api_versions")).status_code == 200
    v1_headers = {**HEADERS, "Version": "1.3.0"}
    v1_list = await two.get(f"{west}/vnflcm/v1/vnf_instances", headers=v1_headers)
    assert v1_list.status_code == 200 and v1_list.json() == []

    # west's apiRoot creates from west's packages only (SOL003: unknown vnfdId → 422).
    refused = await lcm(two, contract, west, "POST", "/vnf_instances", {"vnfdId": "app-1.0.0"})
    assert refused.status_code == 422
    created = await lcm(two, contract, west, "POST", "/vnf_instances", {"vnfdId": "web-2.0.0"})
    assert created.status_code == 201, created.text
    vnf = created.json()
    assert vnf["_links"]["self"]["href"].startswith(managers["west"]["serviceUri"] + "/vnflcm/v2/")
    other = await lcm(two, contract, east, "POST", "/vnf_instances", {"vnfdId": "app-1.0.0"})
    assert other.status_code == 201

    started = await lcm(
        two,
        contract,
        west,
        "POST",
        f"/vnf_instances/{vnf['id']}/instantiate",
        {"flavourId": "default"},
    )
    assert started.status_code == 202, started.text
    op_path = local(two, started.headers["Location"])
    assert op_path.startswith(f"{west}/vnflcm/v2/vnf_lcm_op_occs/")
    op_occ_id = op_path.rsplit("/", 1)[1]
    await two.wait_operation(op_occ_id)

    # Each apiRoot sees its own instance and occurrence; the gateway's root sees both.
    west_list = await lcm(two, contract, west, "GET", "/vnf_instances")
    assert [v["id"] for v in west_list.json()] == [vnf["id"]]
    east_list = await lcm(two, contract, east, "GET", "/vnf_instances")
    assert [v["id"] for v in east_list.json()] == [other.json()["id"]]
    root_list = await lcm(two, contract, "", "GET", "/vnf_instances")
    assert len(root_list.json()) == 2
    west_ops = await lcm(two, contract, west, "GET", "/vnf_lcm_op_occs")
    assert [o["id"] for o in west_ops.json()] == [op_occ_id]
    assert (await lcm(two, contract, east, "GET", "/vnf_lcm_op_occs")).json() == []
    mine = await lcm(two, contract, west, "GET", f"/vnf_instances/{vnf['id']}")
    assert mine.status_code == 200 and mine.json()["instantiationState"] == "INSTANTIATED"
    elsewhere = await lcm(two, contract, east, "GET", f"/vnf_instances/{vnf['id']}")
    assert elsewhere.status_code == 404
    hidden = await lcm(two, contract, east, "GET", f"/vnf_lcm_op_occs/{op_occ_id}")
    assert hidden.status_code == 404
    occ = await lcm(two, contract, west, "GET", f"/vnf_lcm_op_occs/{op_occ_id}")
    assert occ.json()["operationState"] == "COMPLETED"


async def test_auth_and_unknown_ids(two: Gateway) -> None:
    no_token = {"Authorization": ""}
    for path in (
        f"{O2IMS}/deploymentManagers",
        f"{O2IMS}/deploymentManagers/east",
        "/deploymentManagers/east/vnflcm/v2/vnf_instances",
    ):
        response = await two.client.get(path, headers={**HEADERS, **no_token})
        assert response.status_code == 401, (path, response.text)
    for path in (
        f"{O2IMS}/deploymentManagers/north",
        "/deploymentManagers/north/vnflcm/v2/api_versions",
        "/deploymentManagers/north/vnflcm/v2/vnf_instances",
    ):
        response = await two.get(path, headers=HEADERS)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 404 and "north" in problem["detail"]

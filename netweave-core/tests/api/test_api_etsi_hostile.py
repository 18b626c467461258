"""Hostile or malformed client input to the ETSI face (SOL003/SOL005 and the O2ims discovery)
is a 4xx ``application/problem+json`` naming the problem, never a 500. Each case here answered
500 once; requests go through the real app (memory adapter) and, on ``/vnflcm/v2`` and
``/vnflcm/v1``, every response is validated against the SOL003 contracts."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import sol003_v1_contract, sol003_vnflcm_contract
from support.gateway import Gateway
from support.problems import assert_problem

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
VERSIONS = {"/vnflcm/v2": "2.3.0", "/vnflcm/v1": "1.3.0"}


@pytest.fixture(scope="module")
def contracts() -> dict[str, ContractValidator]:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return {"/vnflcm/v2": sol003_vnflcm_contract(SHARED), "/vnflcm/v1": sol003_v1_contract(SHARED)}


def marker(*items: object) -> str:
    raw = json.dumps(list(items)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "stamp",
    # Both are valid ISO times with a zone, but neither instant has a year in 1..9999 in UTC.
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"],
)
@pytest.mark.parametrize("query", ["", "filter=(eq,vnfdId,app-1.0.0)&"])
@pytest.mark.parametrize("prefix", ["/vnflcm/v2", "/vnflcm/v1"])
async def test_a_marker_whose_time_leaves_the_utc_range_is_a_400(
    gw: Gateway, contracts: dict[str, ContractValidator], prefix: str, query: str, stamp: str
) -> None:
    """Was 500: the marker's time reached the store, which failed converting it to UTC."""
    await gw.register_package("app", "1.0.0")
    headers = {"Version": VERSIONS[prefix], "Accept": "application/json"}
    created = await gw.request(
        "POST", f"{prefix}/vnf_instances", json={"vnfdId": "app-1.0.0"}, headers=headers
    )
    assert created.status_code == 201, created.text
    url = f"{prefix}/vnf_instances?{query}nextpage_opaque_marker={marker(stamp, 'x')}"
    response = await gw.request("GET", url, headers=headers)
    contracts[prefix].validate_response(
        "GET", "/vnf_instances", response.status_code, response.json(), dict(response.headers)
    )
    body = assert_problem(response, 400, field="nextpage_opaque_marker")
    assert "nextpage_opaque_marker" in body["detail"]
    # The same list without the marker still answers (nothing was left broken).
    listed = await gw.request("GET", f"{prefix}/vnf_instances", headers=headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [created.json()["id"]]

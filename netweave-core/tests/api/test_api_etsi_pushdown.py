"""SOL013 filters pushed down to SQL keep their exact semantics: for a varied set of VNF
instances and occurrences (names that look like date-times, hold LIKE wildcards, differ only in
case or are absent; instantiated and not; two packages) every filter answers the same items,
in the same order, with the pushdown as without it — on SQLite and on PostgreSQL, whose LIKE and
NULL handling differ. Paging through a pushed-down filter visits each match once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.api.etsi import sol013, vnflcm
from netweave.testing import require_backend
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.postgres import POSTGRES_URL, temporary_database

V2 = "/vnflcm/v2"
HEADERS = {"Version": "2.3.0", "Accept": "application/json"}
NAMES = [
    "alpha", "ALPHA", "al%pha", "al_pha", "2026-01-02T03:04:05Z", "2026-01-02", "beta",
    None, "gamma", "a'b", "x,y", "",
]  # fmt: skip
FILTERS = [
    "(eq,vnfInstanceName,alpha)",
    "(neq,vnfInstanceName,alpha)",
    "(in,vnfInstanceName,alpha,beta,gamma)",
    "(nin,vnfInstanceName,alpha,beta)",
    "(cont,vnfInstanceName,alp)",
    "(cont,vnfInstanceName,%)",
    "(cont,vnfInstanceName,_)",
    "(ncont,vnfInstanceName,a)",
    "(eq,vnfInstanceName,2026-01-02T03:04:05+00:00)",
    "(gt,vnfInstanceName,2026-01-01)",
    "(eq,vnfInstanceName,'a''b')",
    "(eq,vnfInstanceName,'x,y')",
    "(eq,vnfInstanceName,)",
    "(eq,instantiationState,INSTANTIATED)",
    "(neq,instantiationState,NOT_INSTANTIATED)",
    "(eq,instantiationState,NOT_INSTANTIATED)",
    "(eq,vnfdId,app-1.0.0)",
    "(eq,vnfdId,app-2.0.0)",
    "(neq,vnfdId,app-1.0.0)",
    "(eq,vnfdId,app-2.0.0);(eq,instantiationState,INSTANTIATED)",
    "(cont,vnfInstanceDescription,d1)",
    "(eq,vnfProductName,app);(cont,vnfInstanceName,a)",
]
OP_FILTERS = [
    "(eq,operation,INSTANTIATE)",
    "(neq,operation,INSTANTIATE)",
    "(in,operation,MODIFY_INFO,SCALE)",
    "(eq,operation,INSTANTIATE);(eq,operationState,COMPLETED)",
    "(cont,operation,INST)",
]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str | None]:
    with temporary_database("nw_etsi_pushdown", required=False) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def gateway(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None
) -> AsyncIterator[Gateway]:
    store_url = None
    if request.param == "postgresql":
        if pg_url is None:
            require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
        store_url = pg_url
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], store_url=store_url
    ) as gw:
        if store_url is not None:
            for table in ("vnf_lcm_op_occs", "vnf_instances", "operations", "deployments",
                          "packages", "idempotency_keys"):  # fmt: skip
                async with gw.store.engine.begin() as conn:
                    await conn.exec_driver_sql(f"DELETE FROM {table}")
        yield gw


async def _seed(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    await gw.register_package("app", "2.0.0")
    for i, name in enumerate(NAMES):
        body: dict[str, Any] = {"vnfdId": "app-1.0.0" if i % 3 else "app-2.0.0"}
        if name is not None:
            body["vnfInstanceName"] = name
        if i % 4 == 0:
            body["vnfInstanceDescription"] = f"d{i}"
        created = await gw.post(f"{V2}/vnf_instances", json=body, headers=HEADERS)
        assert created.status_code == 201, created.text
        instance_id = created.json()["id"]
        if i % 2 == 0:
            op = await gw.post(
                f"{V2}/vnf_instances/{instance_id}/instantiate",
                json={"flavourId": "default", "additionalParams": {"releaseName": f"r{i}"}},
                headers=HEADERS,
            )
            assert op.status_code == 202, op.text
            await gw.wait_operation(op.headers["location"].rsplit("/", 1)[1])
        if i % 5 == 0:
            patched = await gw.patch(
                f"{V2}/vnf_instances/{instance_id}", json={"metadata": {"i": i}}, headers=HEADERS
            )
            assert patched.status_code == 202, patched.text


async def _ids(gw: Gateway, resource: str, expression: str) -> list[str]:
    response = await gw.get(f"{V2}/{resource}", params={"filter": expression}, headers=HEADERS)
    assert response.status_code == 200, (expression, response.text)
    return [item["id"] for item in response.json()]


async def test_pushed_down_filters_answer_as_python_does(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(gateway)
    pushed = {f: await _ids(gateway, "vnf_instances", f) for f in FILTERS}
    pushed_ops = {f: await _ids(gateway, "vnf_lcm_op_occs", f) for f in OP_FILTERS}
    assert sum(map(len, pushed.values())) > 50 and all(pushed_ops.values())
    # The same filters with nothing pushed down: Python alone over every row.
    monkeypatch.setattr(sol013, "pushdown", lambda terms, *args: [])
    for expression, ids in pushed.items():
        assert await _ids(gateway, "vnf_instances", expression) == ids, expression
    for expression, ids in pushed_ops.items():
        assert await _ids(gateway, "vnf_lcm_op_occs", expression) == ids, expression


async def test_paging_through_a_pushed_down_filter(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(gateway)
    expected = await _ids(gateway, "vnf_instances", "(eq,vnfdId,app-1.0.0)")
    monkeypatch.setattr(vnflcm, "PAGE_SIZE", 2)
    assert len(expected) > 2 * 2  # several pages
    seen: list[str] = []
    path = f"{V2}/vnf_instances?filter=(eq,vnfdId,app-1.0.0)"
    for _ in range(20):  # bounded
        response = await gateway.get(path, headers=HEADERS)
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()]
        link = response.headers.get("link")
        if link is None:
            break
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
        assert match is not None, link
        path = match.group(1).split("://", 1)[1].split("/", 1)[1]
        path = "/" + path
    assert seen == expected

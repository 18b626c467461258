"""Key API flows on PostgreSQL (the store the gateway uses with several replicas).

PostgreSQL comes from ``NETWEAVE_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, database
``test``); each run creates its own database and drops it at the end. Without a reachable server
these tests skip — or fail when ``NETWEAVE_REQUIRE_BACKENDS=1`` (CI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from netweave.testing import require_backend
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.postgres import POSTGRES_URL, temporary_database
from support.problems import assert_problem


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str | None]:
    with temporary_database("nw_api", required=False) as url:
        yield url


@pytest.fixture
async def pg(tmp_path: Path, pg_url: str | None) -> AsyncIterator[Gateway]:
    if pg_url is None:
        require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], store_url=pg_url
    ) as gateway:
        # Each test starts from empty tables (one database per module).
        for table in ("operations", "deployments", "packages", "idempotency_keys"):
            async with gateway.store.engine.begin() as conn:
                await conn.exec_driver_sql(f"DELETE FROM {table}")
        yield gateway


async def test_package_lifecycle_on_postgresql(pg: Gateway) -> None:
    await pg.register_package("app", "1.0.0")
    await pg.register_package("app", "1.1.0")
    listed = (await pg.get("/o2dms/v1/nfDeploymentDescriptors", params={"name": "app"})).json()
    assert listed["total"] == 2
    assert_problem(
        await pg.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            json={"name": "app", "artifactVersion": "1.0.0", "packageUri": "oci://x/app"},
        ),
        409,
    )
    assert (await pg.delete("/o2dms/v1/nfDeploymentDescriptors/app-1.1.0")).status_code == 204


async def test_deployment_lifecycle_and_state_machine_on_postgresql(pg: Gateway) -> None:
    await pg.register_package("app", "1.0.0")
    deployment, operation = await pg.deploy("app-1.0.0", values={"a": 1})
    assert operation["state"] == "COMPLETED"
    url = f"/o2dms/v1/nfDeployments/{deployment['deploymentId']}"
    assert (await pg.get(url)).json()["status"] == "DEPLOYED"
    pg.memory.hang("scale_deployment")
    response = await pg.post(f"{url}/scale", json={"replicas": 2})
    operation_id = response.json()["operationId"]
    await pg.wait_operation(operation_id, frozenset({"PROCESSING"}))
    assert_problem(await pg.patch(url, json={"values": {"b": 2}}), 409)
    cancelled = await pg.post(f"/o2dms/v1/operations/{operation_id}/cancel")
    assert cancelled.json()["state"] == "FAILED_TEMP"
    failed = await pg.post(f"/o2dms/v1/operations/{operation_id}/fail")
    assert failed.json()["state"] == "FAILED"
    response = await pg.delete(url)
    done = await pg.wait_operation(response.json()["operationId"])
    assert done["state"] == "COMPLETED"
    assert_problem(await pg.get(url), 404)


async def test_idempotency_on_postgresql(pg: Gateway) -> None:
    await pg.register_package("app", "1.0.0")
    body = {"name": "web", "packageId": "app-1.0.0"}
    first = await pg.post("/o2dms/v1/nfDeployments", json=body, headers={"Idempotency-Key": "a"})
    again = await pg.post("/o2dms/v1/nfDeployments", json=body, headers={"Idempotency-Key": "a"})
    assert first.json() == again.json()
    assert (await pg.store.list_deployments()).total == 1

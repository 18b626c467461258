"""Following an operation with ``Prefer: wait=N`` (RFC 7240) on ``GET /operations/{id}``.

The answer comes when the operation is no longer under way — COMPLETED only once the backend
did it, FAILED_TEMP when it refused — or after N seconds with the state it has then; a malformed
preference is ignored (a plain GET). Each test checks what the memory backend holds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from netweave.errors import BackendError
from support.gateway import AUTH, Gateway, running_gateway, served_gateway
from support.problems import assert_problem

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
OPERATIONS = "/o2dms/v1/operations"


async def _create(gw: Gateway) -> str:
    await gw.register_package("app", "1.0.0")
    response = await gw.post(DEPLOYMENTS, json={"name": "web", "packageId": "app-1.0.0"})
    assert response.status_code == 201, response.text
    return gw.operation_id(response)


async def test_a_follower_is_answered_when_the_backend_has_done_it(tmp_path: Path) -> None:
    # A real server: the in-process test client answers one request at a time.
    async with (
        served_gateway(tmp_path) as (base, adapters, _store),
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client,
    ):
        memory = adapters["mem"]
        gate = memory.hang("create_deployment")
        registered = await client.post(
            PACKAGES,
            json={"name": "app", "artifactVersion": "1.0.0", "packageUri": "oci://r.example/app:1"},
        )
        assert registered.status_code == 201, registered.text
        created = await client.post(DEPLOYMENTS, json={"name": "web", "packageId": "app-1.0.0"})
        assert created.status_code == 201, created.text
        operation_id = Gateway.operation_id(created)
        follow = asyncio.create_task(
            client.get(f"{OPERATIONS}/{operation_id}", headers={"Prefer": "wait=20"})
        )
        await asyncio.sleep(0.7)
        # The backend has not done it: no answer yet, and nothing in the backend.
        assert not follow.done()
        assert memory.releases == {}
        started = time.monotonic()
        gate.set()
        response = await asyncio.wait_for(follow, 15)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "COMPLETED"
        assert response.headers["preference-applied"] == "wait=20"
        # Answered at the run's end, not at the wait's end.
        assert time.monotonic() - started < 5
        assert [r.name for r in memory.releases.values()] == ["web"]


async def test_a_follower_is_answered_after_its_wait_while_the_run_goes_on(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as gw:
        gate = gw.memory.hang("create_deployment")
        operation_id = await _create(gw)
        started = time.monotonic()
        response = await gw.get(f"{OPERATIONS}/{operation_id}", headers={"Prefer": "wait=1"})
        assert time.monotonic() - started >= 0.9
        assert response.status_code == 200, response.text
        assert response.json()["state"] in ("STARTING", "PROCESSING")
        assert response.headers["preference-applied"] == "wait=1"
        assert gw.memory.releases == {}
        gate.set()
        done = await gw.wait_operation(operation_id)
        assert done["state"] == "COMPLETED"


async def test_a_follower_of_a_refused_operation_gets_failed_temp(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        gw.memory.fail("create_deployment", BackendError("quota exceeded"), times=5)
        operation_id = await _create(gw)
        response = await gw.get(f"{OPERATIONS}/{operation_id}", headers={"Prefer": "wait=20"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["state"] == "FAILED_TEMP"
        assert "quota exceeded" in body["error"]["detail"]
        assert gw.memory.releases == {}


async def test_follow_preferences_that_are_not_a_wait(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        operation_id = await _create(gw)
        await gw.wait_operation(operation_id)
        url = f"{OPERATIONS}/{operation_id}"
        for prefer in ("wait=abc", "respond-async", "wait", "wait=-1"):
            response = await gw.get(url, headers={"Prefer": prefer})
            assert response.status_code == 200, (prefer, response.text)
            assert "preference-applied" not in response.headers, prefer
        # Several preferences, the wait among them, capped at 30 s.
        response = await gw.get(url, headers={"Prefer": "respond-async, wait=999999"})
        assert response.json()["state"] == "COMPLETED"
        assert response.headers["preference-applied"] == "wait=30"
        missing = await gw.get(
            f"{OPERATIONS}/00000000-0000-4000-8000-000000000000", headers={"Prefer": "wait=5"}
        )
        assert_problem(missing, 404)

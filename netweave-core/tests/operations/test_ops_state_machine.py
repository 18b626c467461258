"""Operation occurrences: the ETSI state machine, retry/fail/cancel rules, resume after a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from netweave.errors import BackendTimeout, BackendUnavailable, InvalidInput
from netweave.models import DeploymentStatus, OperationState, OperationType
from netweave.operations import state_machine
from netweave.store import DeploymentRecord, OperationRecord
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.problems import assert_problem

OPS = "/o2dms/v1/operations"
BASE = "/o2dms/v1/nfDeployments"


def test_rules_table() -> None:
    for state in OperationState:
        if state is OperationState.FAILED_TEMP:
            state_machine.check_retry("op", state)
            state_machine.check_fail("op", state)
        else:
            with pytest.raises(Exception, match="retry is only allowed"):
                state_machine.check_retry("op", state)
            with pytest.raises(Exception, match="fail is only allowed"):
                state_machine.check_fail("op", state)
        if state in (OperationState.STARTING, OperationState.PROCESSING):
            state_machine.check_cancel("op", state)
        else:
            with pytest.raises(Exception, match="cancel is only allowed"):
                state_machine.check_cancel("op", state)
    assert state_machine.can_transition(OperationState.PROCESSING, OperationState.COMPLETED)
    assert not state_machine.can_transition(OperationState.COMPLETED, OperationState.PROCESSING)
    assert not state_machine.can_transition(OperationState.FAILED, OperationState.PROCESSING)


async def create(gw: Gateway, name: str = "web") -> tuple[str, str]:
    response = await gw.post(BASE, json={"name": name, "packageId": "app-1.0.0"})
    assert response.status_code == 201, response.text
    operation_id = response.headers["link"].split("/operations/")[1].split(">")[0]
    return response.json()["deploymentId"], operation_id


async def test_failure_then_retry_completes(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.fail("create_deployment", InvalidInput("values rejected by the chart schema"))
    deployment_id, operation_id = await create(gw)
    operation = await gw.wait_operation(operation_id)
    assert operation["state"] == "FAILED_TEMP"
    assert operation["attempts"] == 1
    # fail/cancel/retry rules from FAILED_TEMP: cancel is a 409
    assert_problem(await gw.post(f"{OPS}/{operation_id}/cancel"), 409)
    response = await gw.post(f"{OPS}/{operation_id}/retry")
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "PROCESSING"
    operation = await gw.wait_operation(operation_id)
    assert operation["state"] == "COMPLETED"
    assert operation["attempts"] == 2
    assert operation["error"] is None
    assert (await gw.get(f"{BASE}/{deployment_id}")).json()["status"] == "DEPLOYED"
    # the idempotency key is the same on every attempt of the step; the attempt counts up
    contexts = [c[2] for c in gw.memory.calls_to("create_deployment")]
    assert len({c.idempotency_key for c in contexts if c}) == 1
    assert [c.attempt for c in contexts if c] == [1, 2]
    # COMPLETED: nothing is allowed any more
    for task in ("retry", "fail", "cancel"):
        body = assert_problem(await gw.post(f"{OPS}/{operation_id}/{task}"), 409)
        assert body["details"]["state"] == "COMPLETED"


async def test_fail_is_final(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.fail("create_deployment", InvalidInput("bad"))
    deployment_id, operation_id = await create(gw)
    await gw.wait_operation(operation_id)
    response = await gw.post(f"{OPS}/{operation_id}/fail")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "FAILED"
    assert_problem(await gw.post(f"{OPS}/{operation_id}/retry"), 409)
    assert_problem(await gw.post(f"{OPS}/{operation_id}/fail"), 409)
    deployment = (await gw.get(f"{BASE}/{deployment_id}")).json()
    assert deployment["status"] == "FAILED"
    # a FAILED create leaves a record the client can delete
    response = await gw.delete(f"{BASE}/{deployment_id}")
    assert response.status_code == 202
    done = await gw.wait_operation(response.headers["location"].rsplit("/", 1)[1])
    assert done["state"] == "COMPLETED"


async def test_cancel_a_running_operation(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.hang("create_deployment")  # never released: only a cancel ends it
    deployment_id, operation_id = await create(gw)
    await gw.wait_operation(operation_id, frozenset({"PROCESSING"}))
    # retry and fail are not allowed while it runs
    assert_problem(await gw.post(f"{OPS}/{operation_id}/retry"), 409)
    assert_problem(await gw.post(f"{OPS}/{operation_id}/fail"), 409)
    response = await gw.post(f"{OPS}/{operation_id}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "FAILED_TEMP"
    assert response.json()["error"]["error"] == "Cancelled"
    deployment = (await gw.get(f"{BASE}/{deployment_id}")).json()
    assert deployment["status"] == "FAILED"
    assert "cancelled" in deployment["statusMessage"]
    services = gw.app.state.services
    for _ in range(100):
        if operation_id not in services.worker.running:
            break
        await asyncio.sleep(0.01)
    assert operation_id not in services.worker.running
    # still FAILED_TEMP (the interrupted runner did not overwrite it)
    assert (await gw.get(f"{OPS}/{operation_id}")).json()["state"] == "FAILED_TEMP"


async def test_cancel_a_starting_operation(tmp_path: Path) -> None:
    settings_dir = tmp_path / "data"
    from support.gateway import make_settings

    settings = make_settings(settings_dir)
    settings.operations.workers = 1
    async with running_gateway(tmp_path, settings=settings) as gw:
        await gw.register_package("app", "1.0.0")
        gw.memory.hang("create_deployment")
        _, first = await create(gw, "one")
        await gw.wait_operation(first, frozenset({"PROCESSING"}))
        # the only worker slot is busy: the second stays STARTING
        _, second = await create(gw, "two")
        await asyncio.sleep(0.1)
        assert (await gw.get(f"{OPS}/{second}")).json()["state"] == "STARTING"
        response = await gw.post(f"{OPS}/{second}/cancel")
        assert response.status_code == 202
        assert response.json()["state"] == "FAILED_TEMP"


async def test_backend_unavailable_is_retried_in_process(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.fail("create_deployment", BackendUnavailable("apiserver restarting"))
    _, operation_id = await create(gw)
    operation = await gw.wait_operation(operation_id)
    assert operation["state"] == "COMPLETED"
    assert operation["attempts"] == 2


async def test_retries_are_bounded(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.fail("create_deployment", BackendTimeout("slow"), times=5)
    _, operation_id = await create(gw)
    operation = await gw.wait_operation(operation_id)
    assert operation["state"] == "FAILED_TEMP"
    assert operation["attempts"] == gw.settings.operations.max_attempts
    assert operation["error"]["status"] == 504


async def test_list_and_get_operations(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    response = await gw.post(f"{BASE}/{deployment['deploymentId']}/scale", json={"replicas": 2})
    await gw.wait_operation(response.headers["location"].rsplit("/", 1)[1])
    body = (await gw.get(OPS, params={"deploymentId": deployment["deploymentId"]})).json()
    assert body["total"] == 2
    assert [o["operationType"] for o in body["items"]] == ["CREATE", "SCALE"]
    assert (await gw.get(OPS, params={"state": "COMPLETED", "limit": 1})).json()["total"] == 2
    assert (await gw.get(OPS, params={"state": "FAILED"})).json()["total"] == 0
    assert_problem(await gw.get(OPS, params={"state": "DONE"}), 400, "state")
    assert_problem(await gw.get(OPS, params={"deploymentId": "x"}), 400, "deploymentId")
    assert_problem(await gw.get(OPS, params={"offset": -1}), 400, "offset")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_problem(await gw.get(f"{OPS}/{unknown}"), 404)
    assert_problem(await gw.post(f"{OPS}/{unknown}/retry"), 404)
    assert_problem(await gw.get(f"{OPS}/nope"), 400, "operationId")


async def test_resume_after_a_dead_process(tmp_path: Path) -> None:
    """An operation left PROCESSING by a killed gateway (lease expired) runs on the next start,
    once, with the same idempotency key."""
    from netweave.store.sql import create_store

    store = create_store(f"sqlite:///{tmp_path / 'netweave.db'}")
    adapter = MemoryAdapter("mem")
    try:
        async with running_gateway(tmp_path, adapters=[adapter]) as gw:
            await gw.register_package("app", "1.0.0")
        # What a dead process leaves behind: a deployment DEPLOYING, its operation PROCESSING
        # with a lease held by an owner that no longer renews it.
        now = datetime.now(UTC)
        await store.add_deployment(
            DeploymentRecord(
                deployment_id="11111111-1111-4111-8111-111111111111",
                name="ghost",
                namespace="default",
                package_id="app-1.0.0",
                package_version="1.0.0",
                adapter="mem",
                status=DeploymentStatus.DEPLOYING,
                created_at=now,
                updated_at=now,
            )
        )
        await store.add_operation(
            OperationRecord(
                operation_id="22222222-2222-4222-8222-222222222222",
                operation_type=OperationType.CREATE,
                deployment_id="11111111-1111-4111-8111-111111111111",
                adapter="mem",
                state=OperationState.PROCESSING,
                start_time=now - timedelta(minutes=5),
                state_entered_time=now - timedelta(minutes=5),
                attempts=1,
                lease_owner="dead-host:1234",
                lease_expires_at=now - timedelta(seconds=1),
            )
        )
        async with running_gateway(tmp_path, adapters=[adapter]) as gw:
            operation = await gw.wait_operation("22222222-2222-4222-8222-222222222222")
            assert operation["state"] == "COMPLETED"
            assert operation["attempts"] == 2
            got = (await gw.get(f"{BASE}/11111111-1111-4111-8111-111111111111")).json()
            assert got["status"] == "DEPLOYED"
        calls = adapter.calls_to("create_deployment")
        assert len(calls) == 1
        ctx: Any = calls[0][2]
        assert ctx.idempotency_key == "22222222-2222-4222-8222-222222222222:create"
    finally:
        await store.close()


async def test_a_live_lease_is_not_taken(tmp_path: Path) -> None:
    """Another replica's operation (lease still valid) is left alone."""
    from netweave.store.sql import create_store

    store = create_store(f"sqlite:///{tmp_path / 'netweave.db'}")
    adapter = MemoryAdapter("mem")
    try:
        now = datetime.now(UTC)
        await store.migrate()
        await store.add_operation(
            OperationRecord(
                operation_id="33333333-3333-4333-8333-333333333333",
                operation_type=OperationType.DELETE,
                deployment_id="44444444-4444-4444-8444-444444444444",
                adapter="mem",
                state=OperationState.PROCESSING,
                start_time=now,
                state_entered_time=now,
                lease_owner="other-replica",
                lease_expires_at=now + timedelta(minutes=10),
            )
        )
        async with running_gateway(tmp_path, adapters=[adapter]) as gw:
            await asyncio.sleep(0.2)
            body = (await gw.get(f"{OPS}/33333333-3333-4333-8333-333333333333")).json()
            assert body["state"] == "PROCESSING"
        assert adapter.calls_to("delete_deployment") == []
    finally:
        await store.close()

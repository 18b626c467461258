"""The outcome rule and the ways out of FAILED_TEMP, through the HTTP API.

An operation is COMPLETED only when the backend confirms the requested end state; otherwise
FAILED_TEMP with the backend's own message, and the deployment, the events and the metrics say
the same. A request that cannot succeed is refused before any operation exists. A FAILED_TEMP
operation blocks its deployment with a 409 that names the ways out (retry, rollback, fail), and
``rollback`` restores what the deployment was before it. Each test checks what the (memory)
backend holds afterwards, not only the operation's word.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from netweave.adapters import AdapterConfig, Timeouts
from netweave.config.plugins import make_plugin_manager
from netweave.errors import BackendError, InvalidInput
from netweave.hookspecs import hookimpl
from netweave.models import DeploymentStatus
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.problems import assert_problem

DEPLOYMENTS = "/o2dms/v1/nfDeployments"
OPERATIONS = "/o2dms/v1/operations"
SETTLED = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
D = DeploymentStatus


class Recorder:
    def __init__(self) -> None:
        self.operations: list[tuple[str, str]] = []

    @hookimpl
    def netweave_operation_event(self, operation: Any, previous_state: str | None) -> None:
        self.operations.append((operation.operation_id, operation.state.value))


async def change(gw: Gateway, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await gw.request(method, url, json=body)
    assert response.status_code in (201, 202), response.text
    return await gw.wait_operation(gw.operation_id(response), SETTLED)


async def deployed(gw: Gateway, values: dict[str, Any] | None = None) -> dict[str, Any]:
    await gw.register_package("app", "1.0.0")
    deployment, operation = await gw.deploy("app-1.0.0", values=values or {"a": 1})
    assert operation["state"] == "COMPLETED", operation
    return deployment


async def deployment_of(gw: Gateway, deployment_id: str) -> dict[str, Any]:
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def metric(text: str, state: str, kind: str) -> float:
    prefix = f'o2dms_operations_total{{adapter="mem",state="{state}",type="{kind}"}}'
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


async def test_a_failed_upgrade_is_failed_temp_everywhere(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    recorder = Recorder()
    pm.register(recorder)
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"
        gw.memory.settle(
            "update_deployment",
            [D.DEPLOYING, D.FAILED],
            'Deployment.apps "web" is invalid: spec.replicas: Invalid value: "three"',
        )

        operation = await change(gw, "PATCH", url, {"values": {"replicaCount": "three"}})

        assert operation["state"] == "FAILED_TEMP"
        assert "spec.replicas: Invalid value" in operation["error"]["detail"]
        assert operation["error"]["details"]["deploymentStatus"] == "FAILED"
        stored = await deployment_of(gw, deployment["deploymentId"])
        assert stored["status"] == "FAILED"
        assert "spec.replicas" in stored["statusMessage"]
        assert (operation["operationId"], "FAILED_TEMP") in recorder.operations
        assert (operation["operationId"], "COMPLETED") not in recorder.operations
        metrics = (await gw.get("/metrics")).text
        assert metric(metrics, "FAILED_TEMP", "UPDATE") == 1
        assert metric(metrics, "COMPLETED", "UPDATE") == 0


async def test_completed_only_after_the_backend_settles(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        await gw.register_package("app", "1.0.0")
        gw.memory.settle("create_deployment", [D.PENDING, D.DEPLOYING, D.DEPLOYING, D.DEPLOYED])

        _, operation = await gw.deploy("app-1.0.0", values={"a": 1})

        assert operation["state"] == "COMPLETED"
        (release,) = gw.memory.releases.values()
        assert release.status is D.DEPLOYED and not release.coming
        reads = gw.memory.calls_to("get_deployment")
        assert len(reads) >= 3, "the runner polled the backend until it settled"


async def test_a_backend_that_never_settles_times_out_into_failed_temp(tmp_path: Path) -> None:
    adapter = MemoryAdapter("mem", AdapterConfig(timeouts=Timeouts(write=0.4)))
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        await gw.register_package("app", "1.0.0")
        adapter.settle("create_deployment", [D.DEPLOYING] * 10_000, "waiting for pods")

        deployment, operation = await gw.deploy("app-1.0.0")

        assert operation["state"] == "FAILED_TEMP"
        assert operation["error"]["status"] == 504
        assert "still reports the deployment DEPLOYING after" in operation["error"]["detail"]
        assert "waiting for pods" in operation["error"]["detail"]
        stored = await deployment_of(gw, deployment["deploymentId"])
        assert stored["status"] == "DEPLOYING"  # what the backend says, not COMPLETED


async def test_values_the_backend_did_not_take_are_not_completed(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"
        real = gw.memory._update_deployment

        async def ignoring_values(ref: str, change: Any, ctx: Any) -> Any:
            return await real(ref, type(change)(values={}, values_mode="merge"), ctx)

        gw.memory._update_deployment = ignoring_values  # type: ignore[method-assign]

        operation = await change(gw, "PATCH", url, {"values": {"b": 2}})

        assert operation["state"] == "FAILED_TEMP"
        assert "does not hold the requested values" in operation["error"]["detail"]


async def test_a_rollback_outside_the_history_is_refused_up_front(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"
        before = (await gw.get(OPERATIONS)).json()["total"]

        to_99 = await gw.post(f"{url}/rollback", json={"revision": 99})
        previous = await gw.post(f"{url}/rollback", json={})

        problem = assert_problem(to_99, 400)
        assert "no revision 99" in problem["detail"]
        assert problem["details"]["revisions"] == [1]
        assert "no previous revision" in assert_problem(previous, 400)["detail"]
        assert (await gw.get(OPERATIONS)).json()["total"] == before
        assert gw.memory.calls_to("rollback_deployment") == []
        stored = await deployment_of(gw, deployment["deploymentId"])
        assert stored["status"] == "DEPLOYED"
        # Nothing blocks the deployment afterwards.
        assert (await change(gw, "PATCH", url, {"values": {"b": 2}}))["state"] == "COMPLETED"


async def test_a_scale_the_backend_cannot_carry_is_refused_up_front(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"

        async def no_scale_key(ref: str, replicas: int) -> None:
            raise InvalidInput("the chart has no replicaCount", details={"field": "replicas"})

        gw.memory._check_scale = no_scale_key  # type: ignore[method-assign]
        before = (await gw.get(OPERATIONS)).json()["total"]

        response = await gw.post(f"{url}/scale", json={"replicas": 3})

        assert "no replicaCount" in assert_problem(response, 400)["detail"]
        assert (await gw.get(OPERATIONS)).json()["total"] == before
        assert gw.memory.calls_to("scale_deployment") == []


async def test_failed_temp_blocks_with_the_ways_out_and_rollback_restores(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw, {"a": 1})
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"
        await gw.register_package("app", "2.0.0")
        gw.memory.settle("update_deployment", [D.FAILED], "the new version crashed")

        failed = await change(gw, "PATCH", url, {"packageId": "app-2.0.0", "values": {"a": 2}})
        assert failed["state"] == "FAILED_TEMP"
        oid = failed["operationId"]

        blocked = assert_problem(await gw.delete(url), 409)
        assert blocked["details"]["operationId"] == oid
        assert blocked["details"]["waysOut"] == {
            task: f"{OPERATIONS}/{oid}/{task}" for task in ("retry", "rollback", "fail")
        }
        assert f"POST {OPERATIONS}/{oid}/rollback" in blocked["detail"]

        response = await gw.post(f"{OPERATIONS}/{oid}/rollback")
        assert response.status_code == 202, response.text
        assert response.json()["state"] == "ROLLING_BACK"
        done = await gw.wait_operation(oid, SETTLED)

        assert done["state"] == "ROLLED_BACK", done
        (release,) = gw.memory.releases.values()
        assert release.status is D.DEPLOYED
        assert release.package.version == "1.0.0"
        assert release.values == {"a": 1}
        stored = await deployment_of(gw, deployment["deploymentId"])
        assert stored["status"] == "DEPLOYED"
        assert stored["packageId"] == "app-1.0.0"
        assert stored["values"] == {"a": 1}
        # Unblocked: the next change runs.
        assert (await change(gw, "PATCH", url, {"values": {"a": 3}}))["state"] == "COMPLETED"


async def test_rollback_of_a_failed_create_leaves_nothing(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        await gw.register_package("app", "1.0.0")
        gw.memory.settle("create_deployment", [D.FAILED], "CRD not installed")
        deployment, failed = await gw.deploy("app-1.0.0")
        assert failed["state"] == "FAILED_TEMP"
        assert "CRD not installed" in failed["error"]["detail"]
        assert gw.memory.releases, "the half-installed release is still in the backend"

        await gw.post(f"{OPERATIONS}/{failed['operationId']}/rollback")
        done = await gw.wait_operation(failed["operationId"], SETTLED)

        assert done["state"] == "ROLLED_BACK"
        assert gw.memory.releases == {}
        assert (await gw.get(f"{DEPLOYMENTS}/{deployment['deploymentId']}")).status_code == 404


async def test_a_rollback_that_fails_is_failed_temp_again(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"
        gw.memory.settle("update_deployment", [D.FAILED], "upgrade failed")
        failed = await change(gw, "PATCH", url, {"values": {"a": 2}})
        gw.memory.fail("rollback_deployment", BackendError("rollback refused by the backend"))

        await gw.post(f"{OPERATIONS}/{failed['operationId']}/rollback")
        again = await gw.wait_operation(failed["operationId"], frozenset({"FAILED_TEMP"}))

        assert "rollback refused by the backend" in again["error"]["detail"]
        # The second try goes through.
        await gw.post(f"{OPERATIONS}/{failed['operationId']}/rollback")
        done = await gw.wait_operation(failed["operationId"], SETTLED - {"FAILED_TEMP"})
        assert done["state"] == "ROLLED_BACK"
        (release,) = gw.memory.releases.values()
        assert release.values == {"a": 1}


async def test_a_failed_delete_cannot_be_rolled_back(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        gw.memory.fail("delete_deployment", BackendError("finalizer stuck"))
        response = await gw.delete(f"{DEPLOYMENTS}/{deployment['deploymentId']}")
        failed = await gw.wait_operation(gw.operation_id(response), SETTLED)
        assert failed["state"] == "FAILED_TEMP"

        refused = assert_problem(
            await gw.post(f"{OPERATIONS}/{failed['operationId']}/rollback"), 409
        )

        assert "cannot be rolled back" in refused["detail"]
        assert (await gw.get(f"{OPERATIONS}/{failed['operationId']}")).json()["state"] == (
            "FAILED_TEMP"
        )


async def test_a_failed_request_keeps_a_healthy_deployment_deployed(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"
        gw.memory.fail("update_deployment", BackendError("admission webhook denied the request"))

        operation = await change(gw, "PATCH", url, {"values": {"a": 2}})

        assert operation["state"] == "FAILED_TEMP"
        stored = await deployment_of(gw, deployment["deploymentId"])
        assert stored["status"] == "DEPLOYED", "the release is as healthy as before"
        assert "admission webhook denied" in stored["statusMessage"]
        assert operation["operationId"] in stored["statusMessage"]


async def test_a_delete_completes_only_when_the_backend_no_longer_has_it(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        real = gw.memory._delete_deployment
        gone = asyncio.Event()

        async def slow_delete(ref: str, ctx: Any) -> None:
            # The backend accepts the delete and removes the release a little later.
            gw.memory.releases[ref].status = D.DELETING

            async def later() -> None:
                await asyncio.sleep(0.3)
                await real(ref, ctx)
                gone.set()

            asyncio.get_running_loop().create_task(later())

        gw.memory._delete_deployment = slow_delete  # type: ignore[method-assign]
        response = await gw.delete(f"{DEPLOYMENTS}/{deployment['deploymentId']}")
        operation = await gw.wait_operation(gw.operation_id(response), SETTLED)

        assert operation["state"] == "COMPLETED"
        assert gone.is_set() and gw.memory.releases == {}


async def test_an_update_the_backend_cannot_carry_is_a_501_up_front(tmp_path: Path) -> None:
    from netweave.errors import Unsupported

    async with running_gateway(tmp_path) as gw:
        deployment = await deployed(gw)
        url = f"{DEPLOYMENTS}/{deployment['deploymentId']}"

        async def cannot_update(ref: str, change: Any) -> None:
            raise Unsupported("this backend cannot update", details={"capability": "update"})

        gw.memory._check_update = cannot_update  # type: ignore[method-assign]
        before = (await gw.get(OPERATIONS)).json()["total"]

        response = await gw.patch(url, json={"values": {"b": 2}})

        assert "cannot update" in assert_problem(response, 501)["detail"]
        assert (await gw.get(OPERATIONS)).json()["total"] == before
        assert gw.memory.calls_to("update_deployment") == []

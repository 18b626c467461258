"""nfDeployments through the real app: lifecycle, reads reconciled with the backend, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from netweave.adapters import Capability
from netweave.errors import BackendError, BackendUnavailable
from netweave.models import DeploymentStatus
from support.gateway import Gateway, running_gateway
from support.memory_adapter import limited
from support.problems import assert_problem

BASE = "/o2dms/v1/nfDeployments"
OPS = "/o2dms/v1/operations"


def operation_id_of(response: Any) -> str:
    location: str = response.headers["location"]
    assert location.startswith(f"{OPS}/")
    return location.rsplit("/", 1)[1]


async def test_create_is_201_pending_with_location_and_operation_link(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gate = gw.memory.hang("create_deployment")
    response = await gw.post(
        BASE,
        json={"name": "web", "packageId": "app-1.0.0", "namespace": "ran", "values": {"a": 1}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["adapter"] == "mem"
    assert body["packageVersion"] == "1.0.0"
    assert response.headers["location"] == f"{BASE}/{body['deploymentId']}"
    link = response.headers["link"]
    assert link.endswith('>; rel="operation"')
    operation_id = link.split("/operations/")[1].split(">")[0]
    operation = await gw.wait_operation(operation_id, frozenset({"PROCESSING"}))
    assert operation["operationType"] == "CREATE"
    assert operation["deploymentId"] == body["deploymentId"]
    # while the backend works, the deployment says so
    running = (await gw.get(f"{BASE}/{body['deploymentId']}")).json()
    assert running["status"] == "DEPLOYING"
    gate.set()
    operation = await gw.wait_operation(operation_id)
    assert operation["state"] == "COMPLETED"
    done = (await gw.get(f"{BASE}/{body['deploymentId']}")).json()
    assert done["status"] == "DEPLOYED"
    assert done["revision"] == 1
    assert done["values"] == {"a": 1}
    release = gw.memory.releases["ran/web"]
    assert release.values == {"a": 1}


async def test_failed_create_is_failed_with_backend_message(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    gw.memory.fail("create_deployment", BackendError("chart hook failed: exit 3"))
    response = await gw.post(BASE, json={"name": "web", "packageId": "app-1.0.0"})
    operation_id = response.headers["link"].split("/operations/")[1].split(">")[0]
    operation = await gw.wait_operation(operation_id)
    assert operation["state"] == "FAILED_TEMP"
    assert operation["error"]["error"] == "BackendError"
    assert operation["error"]["status"] == 502
    deployment = (await gw.get(f"{BASE}/{response.json()['deploymentId']}")).json()
    assert deployment["status"] == "FAILED"
    assert "chart hook failed" in deployment["statusMessage"]


async def test_get_reconciles_with_the_backend(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    deployment_id = deployment["deploymentId"]
    gw.memory.releases["default/web"].status = DeploymentStatus.DEGRADED
    got = (await gw.get(f"{BASE}/{deployment_id}")).json()
    assert got["status"] == "DEGRADED"
    stored = await gw.store.get_deployment(deployment_id)
    assert stored is not None
    assert stored.status == DeploymentStatus.DEGRADED
    status = (await gw.get(f"{BASE}/{deployment_id}/status")).json()
    assert status["status"] == "DEGRADED"
    assert status["backendStatus"] == "degraded"
    assert status["extensions"] == {"memory.namespace": "default"}
    # the backend lost it: never reported as deployed
    del gw.memory.releases["default/web"]
    assert (await gw.get(f"{BASE}/{deployment_id}")).json()["status"] == "DELETED"
    # the backend is unreachable: UNKNOWN for this answer, the stored state is kept
    gw.memory.releases["default/web"] = object()  # type: ignore[assignment]
    gw.memory.fail("get_deployment", BackendUnavailable("cluster down"))
    got = (await gw.get(f"{BASE}/{deployment_id}")).json()
    assert got["status"] == "UNKNOWN"
    assert "cluster down" in got["statusMessage"]


async def test_patch_merges_put_replaces_values(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0", values={"a": 1, "b": {"c": 2}})
    url = f"{BASE}/{deployment['deploymentId']}"
    response = await gw.patch(url, json={"values": {"b": {"d": 3}}})
    assert response.status_code == 202, response.text
    assert response.json()["operationType"] == "UPDATE"
    await gw.wait_operation(operation_id_of(response))
    got = (await gw.get(url)).json()
    assert got["revision"] == 2
    assert gw.memory.releases["default/web"].values == {"a": 1, "b": {"d": 3}}
    response = await gw.put(url, json={"values": {"z": 9}})
    assert response.status_code == 202, response.text
    await gw.wait_operation(operation_id_of(response))
    assert gw.memory.releases["default/web"].values == {"z": 9}
    assert (await gw.get(url)).json()["values"] == {"z": 9}


async def test_upgrade_to_new_package_and_deprecated_warning(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    await gw.register_package("app", "2.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    await gw.patch("/o2dms/v1/nfDeploymentDescriptors/app-2.0.0", json={"state": "DEPRECATED"})
    url = f"{BASE}/{deployment['deploymentId']}"
    response = await gw.patch(url, json={"packageId": "app-2.0.0"})
    assert response.status_code == 202, response.text
    assert "DEPRECATED" in response.headers["warning"]
    await gw.wait_operation(operation_id_of(response))
    got = (await gw.get(url)).json()
    assert (got["packageId"], got["packageVersion"]) == ("app-2.0.0", "2.0.0")


async def test_deploying_a_deprecated_package_warns(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    await gw.patch("/o2dms/v1/nfDeploymentDescriptors/app-1.0.0", json={"state": "DEPRECATED"})
    response = await gw.post(BASE, json={"name": "web", "packageId": "app-1.0.0"})
    assert response.status_code == 201
    assert response.headers["warning"].startswith("299 netweave")


async def test_delete_removes_the_record_after_uninstall(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    url = f"{BASE}/{deployment['deploymentId']}"
    response = await gw.delete(url)
    assert response.status_code == 202, response.text
    assert response.json()["operationType"] == "DELETE"
    operation = await gw.wait_operation(operation_id_of(response))
    assert operation["state"] == "COMPLETED"
    assert gw.memory.releases == {}
    assert_problem(await gw.get(url), 404)
    # the operation outlives the deployment
    assert (await gw.get(f"{OPS}/{operation['operationId']}")).status_code == 200


async def test_scale_rollback_history(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0", values={"replicaCount": 1})
    url = f"{BASE}/{deployment['deploymentId']}"
    response = await gw.post(f"{url}/scale", json={"replicas": 0})
    assert response.status_code == 202, response.text
    await gw.wait_operation(operation_id_of(response))
    assert gw.memory.releases["default/web"].values["replicaCount"] == 0
    response = await gw.post(f"{url}/rollback", json={})
    assert response.status_code == 202, response.text
    await gw.wait_operation(operation_id_of(response))
    assert gw.memory.releases["default/web"].values["replicaCount"] == 1
    history = (await gw.get(f"{url}/history")).json()
    assert [r["revision"] for r in history["revisions"]] == [1, 2, 3]
    assert [r["status"] for r in history["revisions"]] == ["superseded", "superseded", "deployed"]
    assert (await gw.get(url)).json()["revision"] == 3
    assert_problem(await gw.post(f"{url}/scale", json={"replicas": -1}), 400, "replicas")
    assert_problem(await gw.post(f"{url}/scale", json={"replicas": "2"}), 400, "replicas")
    assert_problem(await gw.post(f"{url}/rollback", json={"revision": -3}), 400, "revision")


async def test_logs_plain_and_tail(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    url = f"{BASE}/{deployment['deploymentId']}/logs"
    gw.memory.logs["default/web"].append("third")
    response = await gw.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "web started\nweb ready\nthird\n"
    response = await gw.get(url, params={"tailLines": 1, "container": "main"})
    assert response.text == "third\n"
    assert_problem(await gw.get(url, params={"tailLines": -1}), 400, "tailLines")
    assert_problem(await gw.get(url, params={"sinceSeconds": 0}), 400, "sinceSeconds")


async def test_logs_follow_streams_over_a_real_server(tmp_path: Any) -> None:
    import asyncio

    import httpx
    from support.gateway import AUTH, served_gateway

    async with (
        served_gateway(tmp_path) as (url, adapters, _store),
        httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client,
    ):
        created = await client.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            json={"name": "app", "artifactVersion": "1.0.0", "packageUri": "oci://x/app"},
        )
        assert created.status_code == 201, created.text
        response = await client.post(BASE, json={"name": "web", "packageId": "app-1.0.0"})
        deployment_id = response.json()["deploymentId"]
        for _ in range(500):
            got = await client.get(f"{BASE}/{deployment_id}")
            if got.json()["status"] == "DEPLOYED":
                break
            await asyncio.sleep(0.02)
        lines: list[str] = []
        async with client.stream(
            "GET", f"{BASE}/{deployment_id}/logs", params={"follow": "true"}
        ) as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                lines.append(line)
                if len(lines) == 2:
                    # appended after the stream started: still delivered
                    adapters["mem"].logs["default/web"].append("late line")
                if line == "late line":
                    break
        assert lines == ["web started", "web ready", "late line"]


async def test_dry_run_previews_and_stores_nothing(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    response = await gw.post(
        BASE, json={"name": "web", "packageId": "app-1.0.0", "values": {"k": "v"}, "dryRun": True}
    )
    assert response.status_code == 200, response.text
    manifest = response.json()["manifests"]["templates/configmap.yaml"]
    assert "name: web" in manifest
    assert "'k': 'v'" in manifest
    assert (await gw.store.list_deployments()).total == 0
    assert (await gw.store.list_operations()).total == 0
    deployment, _ = await gw.deploy("app-1.0.0")
    url = f"{BASE}/{deployment['deploymentId']}"
    response = await gw.patch(url, json={"values": {"k": "w"}, "dryRun": True})
    assert response.status_code == 200, response.text
    assert "'k': 'w'" in response.json()["manifests"]["templates/configmap.yaml"]
    assert (await gw.store.list_operations()).total == 1  # only the create


async def test_second_change_while_one_runs_is_409(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    url = f"{BASE}/{deployment['deploymentId']}"
    gate = gw.memory.hang("update_deployment")
    first = await gw.patch(url, json={"values": {"a": 1}})
    assert first.status_code == 202
    body = assert_problem(await gw.post(f"{url}/scale", json={"replicas": 3}), 409)
    assert body["details"]["operationId"] == operation_id_of(first)
    assert (await gw.store.list_operations()).total == 2
    gate.set()
    await gw.wait_operation(operation_id_of(first))
    again = await gw.post(f"{url}/scale", json={"replicas": 3})
    assert again.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Web_1", "packageId": "app-1.0.0"}, "name"),
        ({"name": "web", "packageId": "app-1.0.0", "replicas": 2}, "replicas"),
        ({"name": "web", "packageId": "app-1.0.0", "values": [1]}, "values"),
        ({"name": "web"}, "packageId"),
        ({"name": "web", "packageId": "app-1.0.0", "namespace": "A B"}, "namespace"),
        ({"name": "w" * 64, "packageId": "app-1.0.0"}, "name"),
    ],
)
async def test_create_bad_input_is_400_nothing_stored(
    gw: Gateway, body: dict[str, Any], field: str
) -> None:
    await gw.register_package("app", "1.0.0")
    assert_problem(await gw.post(BASE, json=body), 400, field)
    assert (await gw.store.list_deployments()).total == 0
    assert (await gw.store.list_operations()).total == 0


async def test_create_naming_no_configured_adapter_is_422_nothing_stored(gw: Gateway) -> None:
    # Well-formed by the document, refused for what it names.
    await gw.register_package("app", "1.0.0")
    body = {"name": "web", "packageId": "app-1.0.0", "adapter": "nope"}
    assert_problem(await gw.post(BASE, json=body), 422, "adapter")
    assert (await gw.store.list_deployments()).total == 0
    assert (await gw.store.list_operations()).total == 0


async def test_create_errors(gw: Gateway) -> None:
    body = assert_problem(await gw.post(BASE, json={"name": "web", "packageId": "nope-1"}), 404)
    assert body["details"]["field"] == "packageId"
    assert_problem(
        await gw.post(BASE, content=b"name: web", headers={"Content-Type": "application/yaml"}),
        415,
    )
    assert_problem(
        await gw.post(BASE, content=b'{"name": ', headers={"Content-Type": "application/json"}),
        400,
    )
    await gw.register_package("app", "1.0.0")
    await gw.deploy("app-1.0.0")
    body = assert_problem(await gw.post(BASE, json={"name": "web", "packageId": "app-1.0.0"}), 409)
    assert body["error"] == "AlreadyExists"
    assert (await gw.store.list_deployments()).total == 1


async def test_unknown_and_invalid_ids(gw: Gateway) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in ("", "/status", "/history", "/logs"):
        assert_problem(await gw.get(f"{BASE}/{unknown}{path}"), 404)
    assert_problem(await gw.delete(f"{BASE}/{unknown}"), 404)
    assert_problem(await gw.patch(f"{BASE}/{unknown}", json={"values": {}}), 404)
    assert_problem(await gw.post(f"{BASE}/{unknown}/scale", json={"replicas": 1}), 404)
    assert_problem(await gw.get(f"{BASE}/not-a-uuid"), 400, "deploymentId")
    assert_problem(await gw.delete(f"{BASE}/123"), 400, "deploymentId")


async def test_list_filters_and_bad_query(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    await gw.deploy("app-1.0.0", name="a")
    await gw.deploy("app-1.0.0", name="b")
    body = (await gw.get(BASE, params={"packageId": "app-1.0.0", "limit": 1})).json()
    assert body["total"] == 2
    assert len(body["items"]) == 1
    assert (await gw.get(BASE, params={"status": "DEPLOYED"})).json()["total"] == 2
    assert (await gw.get(BASE, params={"namespace": "other"})).json()["total"] == 0
    assert (await gw.get(BASE, params={"adapter": "mem"})).json()["total"] == 2
    # a filter naming no configured adapter matches nothing, as any other filter would
    assert (await gw.get(BASE, params={"adapter": "nope"})).json()["total"] == 0
    for params, field in [
        ({"status": "deployed"}, "status"),
        ({"status": "null"}, "status"),
        ({"namespace": ["a", "b"]}, "namespace"),
        ({"offset": -5}, "offset"),
        ({"limit": 100000}, "limit"),
    ]:
        assert_problem(await gw.get(BASE, params=params), 400, field)


async def test_missing_capability_is_501_naming_it(tmp_path: Any) -> None:
    adapter = limited({Capability.PACKAGE_MANAGEMENT, Capability.DEPLOYMENT_LIFECYCLE}, "basic")
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        await gw.register_package("app", "1.0.0")
        deployment, _ = await gw.deploy("app-1.0.0")
        url = f"{BASE}/{deployment['deploymentId']}"
        for response, capability in [
            (await gw.post(f"{url}/scale", json={"replicas": 2}), "scaling"),
            (await gw.post(f"{url}/rollback", json={}), "rollback"),
            (await gw.get(f"{url}/history"), "history"),
            (await gw.get(f"{url}/logs"), "logs"),
            (
                await gw.post(BASE, json={"name": "x", "packageId": "app-1.0.0", "dryRun": True}),
                "dry-run",
            ),
        ]:
            body = assert_problem(response, 501)
            assert body["details"]["capability"] == capability
            assert capability in body["detail"]
        assert (await gw.store.list_operations()).total == 1


async def test_concurrent_changes_start_one_operation(gw: Gateway) -> None:
    import asyncio

    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    url = f"{BASE}/{deployment['deploymentId']}"
    gate = gw.memory.hang("update_deployment")
    responses = await asyncio.gather(*(gw.patch(url, json={"values": {"n": n}}) for n in range(6)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 409, 409, 409, 409, 409], [r.text for r in responses]
    assert (await gw.store.list_operations()).total == 2
    gate.set()


async def test_oversize_json_body_is_413(tmp_path: Any) -> None:
    from support.gateway import make_settings

    settings = make_settings(tmp_path / "data", max_json_bytes=2048)
    async with running_gateway(tmp_path, settings=settings) as gw:
        await gw.register_package("app", "1.0.0")
        body = {"name": "web", "packageId": "app-1.0.0", "values": {"blob": "x" * 5000}}
        assert_problem(await gw.post(BASE, json=body), 413)
        assert (await gw.store.list_deployments()).total == 0

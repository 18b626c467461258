"""Subscriptions, adapters, API info, health, readiness, metrics, unknown routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from netweave.errors import BackendUnavailable
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter
from support.problems import assert_problem

SUBS = "/o2dms/v1/subscriptions"


async def test_subscription_crud(gw: Gateway) -> None:
    body = {
        # Loopback: the test settings allow it (an unresolvable host is refused, SSRF rules).
        "callbackUri": "http://127.0.0.1:8443/notify",
        "filter": {"eventTypes": ["DeploymentCreated"], "adapters": ["mem"]},
    }
    response = await gw.post(SUBS, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["callbackUri"] == body["callbackUri"]
    assert created["filter"]["eventTypes"] == ["DeploymentCreated"]
    url = f"{SUBS}/{created['subscriptionId']}"
    assert response.headers["location"] == url
    assert (await gw.get(url)).json() == created
    listed = (await gw.get(SUBS)).json()
    assert listed["total"] == 1
    assert (await gw.delete(url)).status_code == 204
    assert_problem(await gw.get(url), 404)
    assert_problem(await gw.delete(url), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"callbackUri": "not a url"}, "callbackUri"),
        ({"callbackUri": "ftp://smo.example/x"}, "callbackUri"),
        ({"callbackUri": "https://user:pw@smo.example/x"}, "callbackUri"),
        ({"callbackUri": "https://smo.example:99999/x"}, "callbackUri"),
        ({"callbackUri": "https://smo.example/x", "filter": {"eventTypes": ["Nope"]}}, "filter"),
        ({"callbackUri": "https://smo.example/x", "secret": "s"}, "secret"),
        ({}, "callbackUri"),
    ],
)
async def test_subscription_bad_input(gw: Gateway, body: dict[str, object], field: str) -> None:
    response = await gw.post(SUBS, json=body)
    problem = assert_problem(response, 400)
    assert field in problem["detail"]
    assert (await gw.store.list_subscriptions()).total == 0


async def test_adapters_list_with_health(tmp_path: Path) -> None:
    broken = MemoryAdapter("broken")
    broken.start_error = BackendUnavailable("cannot reach the cluster")
    down = MemoryAdapter("down")
    down.healthy = False
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("ok"), broken, down], default="ok"
    ) as gw:
        body = (await gw.get("/o2dms/v1/adapters")).json()
        by_name = {a["name"]: a for a in body["items"]}
        assert body["total"] == 3
        ok = by_name["ok"]
        assert (ok["type"], ok["distribution"], ok["default"]) == ("memory", "netweave-core", True)
        assert "scaling" in ok["capabilities"]
        assert ok["version"]
        assert ok["health"]["healthy"] is True
        assert by_name["broken"]["health"]["healthy"] is False
        assert "cannot reach the cluster" in by_name["broken"]["health"]["message"]
        assert by_name["down"]["health"] == {"healthy": False, "message": "down", "details": {}}
        # a backend that failed to start does not make the gateway unready
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 200
        assert "cannot reach the cluster" in ready.json()["checks"]["adapterStartErrors"]["broken"]
        # packages still work on the healthy instance
        await gw.register_package("app", "1.0.0")


async def test_api_info_and_health(gw: Gateway) -> None:
    info = (await gw.get("/o2dms/v1")).json()
    assert info["basePath"] == "/o2dms/v1"
    assert info["adapters"] == ["mem"]
    assert "nfDeployments" in info["resources"]
    assert (await gw.client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    ready = (await gw.client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["store"] == "ok"


async def test_unknown_routes_and_methods_are_problems(gw: Gateway) -> None:
    assert_problem(await gw.get("/o2dms/v1/nothing"), 404)
    assert_problem(await gw.get("/nothing"), 404)
    assert_problem(await gw.client.delete("/healthz"), 405)
    assert_problem(await gw.put("/o2dms/v1/nfDeploymentDescriptors", json={}), 405)


async def test_request_metrics_and_request_id(gw: Gateway) -> None:
    response = await gw.get("/o2dms/v1/nfDeployments", headers={"X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    assert len((await gw.get("/o2dms/v1")).headers["x-request-id"]) >= 8
    text = (await gw.client.get("/metrics")).text
    assert (
        'o2dms_http_requests_total{code="200",method="GET",route="/o2dms/v1/nfDeployments"} 1.0'
        in text
    )
    assert "o2dms_http_request_duration_seconds_bucket" in text
    await gw.register_package("app", "1.0.0")
    await gw.deploy("app-1.0.0")
    text = (await gw.client.get("/metrics")).text
    assert 'o2dms_operations_total{adapter="mem",state="COMPLETED",type="CREATE"} 1.0' in text
    assert 'o2dms_operation_duration_seconds_count{adapter="mem",type="CREATE"} 1.0' in text
    assert 'o2dms_packages_total{adapter="mem",status="IN_USE"} 1.0' in text
    assert 'o2dms_packages_total{adapter="mem",status="AVAILABLE"} 0.0' in text


async def test_two_apps_in_one_process_have_separate_metrics(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "a") as first, running_gateway(tmp_path / "b") as second:
        await first.register_package("app", "1.0.0")
        text = (await second.client.get("/metrics")).text
        assert 'o2dms_package_uploads_total{adapter="mem",status="success"}' not in text


async def test_public_url_makes_location_and_link_absolute(tmp_path: Path) -> None:
    from support.gateway import make_settings

    settings = make_settings(tmp_path / "data", public_url="https://dms.example.net/")
    async with running_gateway(tmp_path, settings=settings) as gw:
        package = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            json={"name": "app", "artifactVersion": "1.0.0", "packageUri": "oci://r/app"},
        )
        assert package.headers["location"] == (
            "https://dms.example.net/o2dms/v1/nfDeploymentDescriptors/app-1.0.0"
        )
        created = await gw.post(
            "/o2dms/v1/nfDeployments", json={"name": "web", "packageId": "app-1.0.0"}
        )
        assert created.headers["location"].startswith("https://dms.example.net/o2dms/v1/")
        assert created.headers["link"].startswith("<https://dms.example.net/o2dms/v1/operations/")
        assert created.headers["link"].endswith('>; rel="operation"')

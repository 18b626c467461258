"""Idempotency-Key on POST: a retried request returns the first response, does nothing again."""

from __future__ import annotations

from support.gateway import Gateway
from support.problems import assert_problem

BASE = "/o2dms/v1/nfDeployments"


async def test_same_key_same_body_replays_the_first_response(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    body = {"name": "web", "packageId": "app-1.0.0", "values": {"a": 1}}
    key = {"Idempotency-Key": "create-web-1"}
    first = await gw.post(BASE, json=body, headers=key)
    assert first.status_code == 201, first.text
    second = await gw.post(BASE, json=body, headers=key)
    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["link"] == first.headers["link"]
    assert second.headers["idempotent-replayed"] == "true"
    assert (await gw.store.list_deployments()).total == 1
    assert (await gw.store.list_operations()).total == 1


async def test_same_key_different_body_is_refused(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    key = {"Idempotency-Key": "k-1"}
    first = await gw.post(BASE, json={"name": "web", "packageId": "app-1.0.0"}, headers=key)
    assert first.status_code == 201
    body = assert_problem(
        await gw.post(BASE, json={"name": "other", "packageId": "app-1.0.0"}, headers=key), 422
    )
    assert body["error"] == "IdempotencyKeyReused"
    assert (await gw.store.list_deployments()).total == 1


async def test_failed_request_is_not_remembered(gw: Gateway) -> None:
    key = {"Idempotency-Key": "k-2"}
    body = {"name": "web", "packageId": "app-1.0.0"}
    assert_problem(await gw.post(BASE, json=body, headers=key), 404)
    await gw.register_package("app", "1.0.0")
    response = await gw.post(BASE, json=body, headers=key)
    assert response.status_code == 201, response.text


async def test_keys_are_scoped_to_the_route(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, _ = await gw.deploy("app-1.0.0")
    key = {"Idempotency-Key": "shared"}
    url = f"{BASE}/{deployment['deploymentId']}"
    scale = await gw.post(f"{url}/scale", json={"replicas": 2}, headers=key)
    assert scale.status_code == 202
    await gw.wait_operation(scale.json()["operationId"])
    again = await gw.post(f"{url}/scale", json={"replicas": 2}, headers=key)
    assert again.json()["operationId"] == scale.json()["operationId"]
    assert len(gw.memory.calls_to("scale_deployment")) == 1
    # the same key on another route is another request
    other = await gw.post(f"{url}/rollback", json={}, headers=key)
    assert other.status_code == 202, other.text
    assert other.json()["operationId"] != scale.json()["operationId"]


async def test_package_registration_and_upload_replay(gw: Gateway) -> None:
    key = {"Idempotency-Key": "pkg-1"}
    body = {"name": "app", "artifactVersion": "1.0.0", "packageUri": "oci://r/app"}
    first = await gw.post("/o2dms/v1/nfDeploymentDescriptors", json=body, headers=key)
    second = await gw.post("/o2dms/v1/nfDeploymentDescriptors", json=body, headers=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    files = {"chart": ("a.tgz", b"archive", "application/gzip")}
    form = {"name": "up", "artifactVersion": "1.0.0"}
    key = {"Idempotency-Key": "upload-1"}
    first = await gw.post("/o2dms/v1/nfDeploymentDescriptors", data=form, files=files, headers=key)
    second = await gw.post("/o2dms/v1/nfDeploymentDescriptors", data=form, files=files, headers=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert len(gw.memory.calls_to("upload_package")) == 2  # one registration, one upload


async def test_invalid_key_is_400(gw: Gateway) -> None:
    response = await gw.post(
        "/o2dms/v1/subscriptions",
        json={"callbackUri": "https://smo.example/cb"},
        headers={"Idempotency-Key": "x" * 300},
    )
    assert_problem(response, 400, "Idempotency-Key")
    assert (await gw.store.list_subscriptions()).total == 0

from __future__ import annotations

from support.gateway import Gateway


async def test_package_register_and_get(gw: Gateway) -> None:
    package = await gw.register_package("app", "1.0.0")
    assert package["packageId"] == "app-1.0.0"
    response = await gw.get("/o2dms/v1/nfDeploymentDescriptors/app-1.0.0")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "AVAILABLE"


async def test_deploy(gw: Gateway) -> None:
    await gw.register_package("app", "1.0.0")
    deployment, operation = await gw.deploy("app-1.0.0")
    assert operation["state"] == "COMPLETED", operation
    response = await gw.get(f"/o2dms/v1/nfDeployments/{deployment['deploymentId']}")
    assert response.json()["status"] == "DEPLOYED", response.text

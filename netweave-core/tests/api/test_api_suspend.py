"""Suspend/resume through PATCH: refused with 501 naming the capability when the owner lacks
it, before anything is stored (the positive path runs in netweave-flux's HTTP test)."""

from __future__ import annotations

from pathlib import Path

from netweave.adapters import Capability
from support.gateway import running_gateway
from support.memory_adapter import MemoryAdapter, limited
from support.problems import assert_problem


async def test_suspend_without_the_capability_is_501_and_starts_nothing(tmp_path: Path) -> None:
    adapter = limited(set(Capability) - {Capability.SUSPEND})
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        package = await gw.register_package()
        deployment, _ = await gw.deploy(package["packageId"])
        url = f"/o2dms/v1/nfDeployments/{deployment['deploymentId']}"
        before = (await gw.get("/o2dms/v1/operations")).json()["total"]

        response = await gw.patch(url, json={"suspend": True})

        problem = assert_problem(response, 501)
        assert problem["details"]["capability"] == "suspend"
        assert (await gw.get("/o2dms/v1/operations")).json()["total"] == before


async def test_suspend_and_resume_run_as_update_operations(tmp_path: Path) -> None:
    adapter = MemoryAdapter("mem")
    async with running_gateway(tmp_path, adapters=[adapter]) as gw:
        package = await gw.register_package()
        deployment, _ = await gw.deploy(package["packageId"])
        url = f"/o2dms/v1/nfDeployments/{deployment['deploymentId']}"
        for suspend in (True, False):
            response = await gw.patch(url, json={"suspend": suspend})
            assert response.status_code == 202, response.text
            operation = await gw.wait_operation(response.headers["location"].rsplit("/", 1)[1])
            assert operation["state"] == "COMPLETED"
            assert operation["params"]["suspend"] is suspend


async def test_an_empty_update_is_a_client_error(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        package = await gw.register_package()
        deployment, _ = await gw.deploy(package["packageId"])
        response = await gw.patch(f"/o2dms/v1/nfDeployments/{deployment['deploymentId']}", json={})
        problem = assert_problem(response, 400)
        assert "suspend" in problem["detail"]

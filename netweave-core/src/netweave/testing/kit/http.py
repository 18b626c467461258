"""The HTTP face: the real app with only this adapter, checked against its OpenAPI document.

camelCase shapes, ``application/problem+json`` errors with the design note's members,
pagination with a real total, ``Location``/``Link`` headers, the operation flow, and 501 for
every capability the adapter does not declare — as an SMO sees them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from netweave.adapters import Capability, DMSAdapter, PackageUpload
from netweave.models.paths import API_PREFIX
from netweave.testing.contracts import ContractValidator
from netweave.testing.kit.base import AdapterFixtures

BASE = API_PREFIX
_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def _camel_keys(value: Any, path: str = "$") -> list[str]:
    """Member names that are not camelCase (values of free-form maps are not inspected)."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not _CAMEL.match(str(key)):
                bad.append(f"{path}.{key}")
            if key not in {"values", "extensions", "details", "params", "source"}:
                bad.extend(_camel_keys(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            bad.extend(_camel_keys(item, f"{path}[{i}]"))
    return bad


class HttpWireTests(AdapterFixtures):
    @pytest_asyncio.fixture
    async def gateway(self, adapter: DMSAdapter, tmp_path: Path) -> AsyncIterator[Any]:
        # The app: imported only for these tests.
        from netweave.testing.gateway import GatewayClient, running_gateway

        gw: GatewayClient
        async with running_gateway(tmp_path, adapters=[adapter]) as gw:
            yield gw

    @pytest_asyncio.fixture
    async def openapi(self, gateway: Any) -> ContractValidator:
        response = await gateway.client.get("/schema/openapi.json")
        assert response.status_code == 200
        return ContractValidator(response.json())

    # -- helpers ---------------------------------------------------------------------------

    def check(
        self, contract: ContractValidator, method: str, path: str, response: httpx.Response
    ) -> Any:
        """The response matches the document; JSON members are camelCase; errors are
        problem+json with the design note's members."""
        body = response.json() if response.content else None
        contract.validate_response(method, path.split("?")[0], response.status_code, body)
        if body is not None:
            bad = _camel_keys(body)
            assert not bad, f"{method} {path}: members not in camelCase: {bad}"
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), (
                f"{method} {path} answered {response.status_code} as "
                f"{response.headers['content-type']}, not application/problem+json"
            )
            assert isinstance(body, dict), f"{method} {path}: error without a problem body"
            for member in ("type", "title", "status", "error", "message", "code"):
                assert member in body, f"problem body of {method} {path} lacks {member!r}"
            assert body["status"] == response.status_code
        return body

    @staticmethod
    async def onboard_over_http(
        gateway: Any, adapter: DMSAdapter, package: PackageUpload
    ) -> httpx.Response:
        if package.archive is not None:
            data = {
                "name": package.name,
                "artifactVersion": package.version,
                "adapter": adapter.name,
            }
            if package.package_type:
                data["packageType"] = package.package_type
            with package.archive.open("rb") as archive:
                files = {"package": (package.archive.name, archive, "application/gzip")}
                response: httpx.Response = await gateway.post(
                    f"{BASE}/nfDeploymentDescriptors", data=data, files=files
                )
            return response
        body: dict[str, Any] = {
            "name": package.name,
            "artifactVersion": package.version,
            "packageUri": package.package_uri,
            "adapter": adapter.name,
            "source": dict(package.source),
        }
        if package.package_type:
            body["packageType"] = package.package_type
        response = await gateway.post(f"{BASE}/nfDeploymentDescriptors", json=body)
        return response

    # -- tests -----------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_http_adapter_listing_and_packages(
        self,
        gateway: Any,
        openapi: ContractValidator,
        adapter: DMSAdapter,
        sample_package: PackageUpload,
    ) -> None:
        response = await gateway.get(f"{BASE}/adapters")
        listing = self.check(openapi, "GET", f"{BASE}/adapters", response)
        ours = [a for a in listing["items"] if a["name"] == adapter.name]
        assert ours, f"GET {BASE}/adapters does not list {adapter.name!r}"
        declared = sorted(c.value for c in adapter.capabilities)
        assert sorted(ours[0]["capabilities"]) == declared

        if Capability.PACKAGE_MANAGEMENT not in adapter.capabilities:
            response = await self.onboard_over_http(gateway, adapter, sample_package)
            assert response.status_code == 501, response.text
            return
        response = await self.onboard_over_http(gateway, adapter, sample_package)
        package = self.check(openapi, "POST", f"{BASE}/nfDeploymentDescriptors", response)
        assert response.status_code == 201, response.text
        location = f"{BASE}/nfDeploymentDescriptors/{package['packageId']}"
        assert response.headers["location"].endswith(location)
        assert (package["name"], package["artifactVersion"]) == (
            sample_package.name,
            sample_package.version,
        )

        response = await gateway.get(location)
        self.check(openapi, "GET", location, response)
        assert response.status_code == 200

        url = f"{BASE}/nfDeploymentDescriptors?limit=1&offset=0"
        page = self.check(openapi, "GET", url, await gateway.get(url))
        assert (page["limit"], page["offset"]) == (1, 0)
        assert page["total"] >= 1
        assert len(page["items"]) == 1

        again = await self.onboard_over_http(gateway, adapter, sample_package)
        problem = self.check(openapi, "POST", f"{BASE}/nfDeploymentDescriptors", again)
        assert again.status_code == 409, again.text
        assert problem["error"]

        missing = f"{BASE}/nfDeploymentDescriptors/netweave-kit-missing-0.0.0"
        self.check(openapi, "GET", missing, response := await gateway.get(missing))
        assert response.status_code == 404

        bad = f"{BASE}/nfDeploymentDescriptors?limit=-1"
        self.check(openapi, "GET", bad, response := await gateway.get(bad))
        assert response.status_code == 400

        response = await gateway.delete(location)
        assert response.status_code == 204, response.text
        self.check(openapi, "GET", location, response := await gateway.get(location))
        assert response.status_code == 404

    @pytest.mark.asyncio
    async def test_http_deployment_flow_and_undeclared_capabilities(
        self,
        gateway: Any,
        openapi: ContractValidator,
        adapter: DMSAdapter,
        sample_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
    ) -> None:
        caps = adapter.capabilities
        if Capability.PACKAGE_MANAGEMENT not in caps:
            pytest.skip("adapter onboards no packages: deployments need one")
        response = await self.onboard_over_http(gateway, adapter, sample_package)
        assert response.status_code == 201, response.text
        package_id = response.json()["packageId"]
        request = {
            "name": self.unique_name("kith"),
            "namespace": namespace,
            "packageId": package_id,
            "values": deployment_values,
        }
        response = await gateway.post(f"{BASE}/nfDeployments", json=request)
        body = self.check(openapi, "POST", f"{BASE}/nfDeployments", response)
        if Capability.DEPLOYMENT_LIFECYCLE not in caps:
            assert response.status_code == 501, response.text
            assert body["details"]["capability"] == "deployment-lifecycle"
            return
        assert response.status_code == 201, response.text
        assert body["status"] == "PENDING"
        url = f"{BASE}/nfDeployments/{body['deploymentId']}"
        assert response.headers["location"].endswith(url)
        operation = await gateway.wait_operation(
            gateway.operation_id(response), wait_seconds=self.settle_timeout
        )
        assert operation["state"] == "COMPLETED", operation
        self.check(openapi, "GET", url, response := await gateway.get(url))
        assert response.status_code == 200

        for capability, path, payload in (
            (Capability.SCALING, "scale", {"replicas": 1}),
            (Capability.ROLLBACK, "rollback", {"revision": 0}),
        ):
            if capability in caps:
                continue
            response = await gateway.post(f"{url}/{path}", json=payload)
            problem = self.check(openapi, "POST", f"{url}/{path}", response)
            assert response.status_code == 501, f"{path}: {response.status_code} {response.text}"
            assert problem["details"]["capability"] == capability.value
        if Capability.DEPLOYMENT_UPDATE not in caps:
            response = await gateway.patch(url, json={"values": {"netweaveKit": {"probe": 1}}})
            problem = self.check(openapi, "PATCH", url, response)
            assert response.status_code == 501, f"update: {response.status_code} {response.text}"
            assert problem["details"]["capability"] == Capability.DEPLOYMENT_UPDATE.value
        if Capability.HISTORY not in caps:
            response = await gateway.get(f"{url}/history")
            problem = self.check(openapi, "GET", f"{url}/history", response)
            assert response.status_code == 501, response.text

        response = await gateway.delete(url)
        self.check(openapi, "DELETE", url, response)
        assert response.status_code == 202, response.text
        operation = await gateway.wait_operation(
            gateway.operation_id(response), wait_seconds=self.settle_timeout
        )
        assert operation["state"] == "COMPLETED", operation
        for _ in range(100):
            if (await gateway.get(url)).status_code == 404:
                break
            await asyncio.sleep(0.05)
        self.check(openapi, "GET", url, response := await gateway.get(url))
        assert response.status_code == 404, "the deployment record must be gone after delete"

"""The failure side, through the real gateway (HTTP → runner → adapter → backend).

An operation is COMPLETED only when the backend confirms the requested end state; a backend
failure ends FAILED_TEMP with the backend's own message; the ``rollback`` way out restores what
the deployment was before; an operation interrupted mid-call (the gateway dies after the backend
did the work) ends truthfully when a new gateway resumes it on the same store, with nothing done
twice; a request for a revision the backend does not have is refused before any operation
exists; a backend that dies in the middle of a call leaves a FAILED_TEMP that ``retry`` finishes.

The backend fixture steers the failures when it implements :class:`KitFaults`; the
interrupted-operation test needs nothing of the adapter's tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest

from netweave.adapters import (
    Capability,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import NotFound
from netweave.models import DeploymentStatus
from netweave.models.paths import API_PREFIX
from netweave.testing.kit.base import AdapterFixtures, KitBackend
from netweave.testing.kit.http import HttpWireTests
from netweave.testing.kit.observe import KitObserver, contains

BASE = API_PREFIX
#: The message the kit asks a failing backend to refuse changes with.
KIT_FAILURE = "netweave-kit injected failure 7f3a"


@runtime_checkable
class KitFaults(Protocol):
    """Optional, on the ``backend`` fixture: make the backend's own operations fail or die."""

    def failing(self, message: str) -> AbstractContextManager[None]:
        """Inside the block the backend refuses every change it is asked for (create, update,
        scale, rollback) with an error of its own whose text includes ``message``."""
        ...

    def crashing(self) -> AbstractContextManager[None]:
        """Inside the block the backend dies in the middle of every change request (the
        connection drops before an answer); after it, the backend serves again."""
        ...


class FailurePathTests(AdapterFixtures):
    # -- helpers ---------------------------------------------------------------------------

    @asynccontextmanager
    async def gateway_for(self, adapter: DMSAdapter, tmp_path: Path) -> AsyncIterator[Any]:
        from netweave.testing.gateway import GatewayClient, running_gateway

        gw: GatewayClient
        async with running_gateway(tmp_path, adapters=[adapter]) as gw:
            yield gw

    def faults(self, backend: KitBackend | None) -> KitFaults:
        if not isinstance(backend, KitFaults):
            self.kit_skip(
                "the backend fixture cannot make the backend's operations fail "
                "(netweave.testing.kit.KitFaults: failing(message), crashing())"
            )
        assert isinstance(backend, KitFaults)
        return backend

    async def onboard(self, gw: Any, adapter: DMSAdapter, package: PackageUpload) -> str:
        response = await HttpWireTests.onboard_over_http(gw, adapter, package)
        assert response.status_code == 201, f"onboarding failed: {response.text}"
        return str(response.json()["packageId"])

    async def create(
        self, gw: Any, package_id: str, namespace: str, values: dict[str, Any], name: str
    ) -> tuple[str, str]:
        """POST a deployment; its (deploymentId, operationId)."""
        response = await gw.post(
            f"{BASE}/nfDeployments",
            json={"name": name, "namespace": namespace, "packageId": package_id, "values": values},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["deploymentId"]), str(gw.operation_id(response))

    async def settled_operation(self, gw: Any, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await gw.wait_operation(
            operation_id,
            frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"}),
            wait_seconds=self.settle_timeout,
        )
        return result

    async def deployment(self, gw: Any, deployment_id: str) -> dict[str, Any] | None:
        response = await gw.get(f"{BASE}/nfDeployments/{deployment_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def backend_has_nothing(self, adapter: DMSAdapter, backend_ref: str | None) -> None:
        if backend_ref is None:
            return
        try:
            info = await adapter.get_deployment(backend_ref)
        except NotFound:
            return
        assert info.status is DeploymentStatus.DELETED, (
            f"after the rollback of a failed create the backend still has {backend_ref!r} "
            f"({info.status.value})"
        )

    async def roll_back(self, gw: Any, operation_id: str) -> dict[str, Any]:
        response = await gw.post(f"{BASE}/operations/{operation_id}/rollback")
        assert response.status_code == 202, response.text
        return await self.settled_operation(gw, operation_id)

    # -- tests -----------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_failed_create_is_failed_temp_and_its_rollback_leaves_nothing(
        self,
        adapter: DMSAdapter,
        failing_package: PackageUpload | None,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
        tmp_path: Path,
    ) -> None:
        self.require_capability(adapter, Capability.DEPLOYMENT_LIFECYCLE)
        if failing_package is None:
            self.kit_skip("no failing_package fixture: the adapter's tests give no failing package")
        assert failing_package is not None
        name = self.unique_name("kitfail")
        async with self.gateway_for(adapter, tmp_path) as gw:
            package_id = await self.onboard(gw, adapter, failing_package)
            deployment_id, operation_id = await self.create(
                gw, package_id, namespace, deployment_values, name
            )
            failed = await self.settled_operation(gw, operation_id)
            assert failed["state"] == "FAILED_TEMP", (
                f"a create the backend cannot carry out ended {failed['state']}, not FAILED_TEMP"
            )
            assert (failed["error"] or {}).get("detail"), (
                "a failed operation must carry the backend's message in error.detail"
            )
            stored = await self.deployment(gw, deployment_id)
            assert stored is not None
            assert stored["status"] != "DEPLOYED", (
                "the deployment of a failed create must not say DEPLOYED"
            )
            done = await self.roll_back(gw, operation_id)
            assert done["state"] == "ROLLED_BACK", (
                f"rollback of a failed create ended {done['state']}: {done.get('error')}"
            )
            assert await self.deployment(gw, deployment_id) is None, (
                "after rolling back a create the deployment is gone"
            )
        spec = self.spec_for(name, namespace, deployment_values, deployment_id)
        await self.left_nothing(observer, spec, "rollback of a failed create")

    @pytest.mark.asyncio
    async def test_failed_change_carries_the_backend_message_and_rollback_restores(
        self,
        adapter: DMSAdapter,
        backend: KitBackend | None,
        sample_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        changed_values: dict[str, Any],
        observer: KitObserver,
        tmp_path: Path,
    ) -> None:
        self.require_capability(adapter, Capability.DEPLOYMENT_UPDATE)
        faults = self.faults(backend)
        name = self.unique_name("kitchg")
        async with self.gateway_for(adapter, tmp_path) as gw:
            package_id = await self.onboard(gw, adapter, sample_package)
            deployment_id, operation_id = await self.create(
                gw, package_id, namespace, deployment_values, name
            )
            created = await self.settled_operation(gw, operation_id)
            assert created["state"] == "COMPLETED", created
            before = await self.deployment(gw, deployment_id)
            assert before is not None
            url = f"{BASE}/nfDeployments/{deployment_id}"
            with faults.failing(KIT_FAILURE):
                response = await gw.patch(url, json={"values": changed_values})
                assert response.status_code == 202, response.text
                failed = await self.settled_operation(gw, gw.operation_id(response))
            assert failed["state"] == "FAILED_TEMP", (
                f"an update the backend refused ended {failed['state']}, not FAILED_TEMP"
            )
            assert KIT_FAILURE in (failed["error"] or {}).get("detail", ""), (
                "the failed operation's error must carry the backend's own message; got "
                f"{failed['error']!r}"
            )
            blocked = await gw.patch(url, json={"values": deployment_values})
            assert blocked.status_code == 409, "a FAILED_TEMP operation blocks further changes"
            ways = blocked.json().get("details", {}).get("waysOut", {})
            assert set(ways) == {"retry", "rollback", "fail"}, blocked.text
            done = await self.roll_back(gw, failed["operationId"])
            assert done["state"] == "ROLLED_BACK", (
                f"rollback of a failed update ended {done['state']}: {done.get('error')}"
            )
            after = await self.deployment(gw, deployment_id)
            assert after is not None
            assert after["status"] == "DEPLOYED", after
            assert after["values"] == before["values"], (after["values"], before["values"])
            spec = self.spec_for(name, namespace, deployment_values, deployment_id)
            seen = await self.observe(observer, spec)
            if seen.values is not None:
                assert not contains(seen.values, changed_values), (
                    "after the rollback the backend still holds the refused values: "
                    f"{seen.describe()}"
                )
            delete = await gw.delete(url)
            assert delete.status_code == 202, delete.text
            assert (await self.settled_operation(gw, gw.operation_id(delete)))["state"] == (
                "COMPLETED"
            )

    @pytest.mark.asyncio
    async def test_an_operation_interrupted_mid_call_ends_truthfully(
        self,
        adapter: DMSAdapter,
        sample_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
        tmp_path: Path,
    ) -> None:
        """The gateway dies after the backend did the work but before it heard back; a new
        gateway on the same store resumes the operation with the same idempotency key."""
        self.require_capability(adapter, Capability.DEPLOYMENT_LIFECYCLE)
        name = self.unique_name("kitcrash")
        real = adapter._create_deployment
        reached = threading.Event()  # the app runs in another thread and event loop

        async def create_then_die(spec: DeploymentSpec, ctx: OperationContext) -> DeploymentInfo:
            info = await real(spec, ctx)
            reached.set()
            await asyncio.Event().wait()  # never answers: the gateway is killed meanwhile
            return info

        adapter._create_deployment = create_then_die  # type: ignore[method-assign]
        try:
            async with self.gateway_for(adapter, tmp_path) as gw:
                package_id = await self.onboard(gw, adapter, sample_package)
                deployment_id, operation_id = await self.create(
                    gw, package_id, namespace, deployment_values, name
                )
                for _ in range(int(self.settle_timeout / 0.05)):
                    if reached.is_set():
                        break
                    await asyncio.sleep(0.05)
                assert reached.is_set(), "the create never reached the backend"
        finally:
            del adapter._create_deployment  # the class's own hook again
        async with self.gateway_for(adapter, tmp_path) as gw:
            done = await self.settled_operation(gw, operation_id)
            assert done["state"] in {"COMPLETED", "FAILED_TEMP"}, done
            stored = await self.deployment(gw, deployment_id)
            assert stored is not None
            spec = self.spec_for(name, namespace, deployment_values, deployment_id)
            if done["state"] == "COMPLETED":
                assert stored["status"] == "DEPLOYED", stored
                seen = await self.observe(observer, spec)
                assert not seen.empty, "COMPLETED, but the backend holds nothing"
            else:
                assert done["error"], "FAILED_TEMP without a reason"
            ops = await gw.get(f"{BASE}/operations", params={"deploymentId": deployment_id})
            assert ops.json()["total"] == 1
            response = await gw.delete(f"{BASE}/nfDeployments/{deployment_id}")
            if response.status_code == 409:  # FAILED_TEMP: give it up first
                await gw.post(f"{BASE}/operations/{operation_id}/fail")
                response = await gw.delete(f"{BASE}/nfDeployments/{deployment_id}")
            assert response.status_code == 202, response.text
            deleted = await self.settled_operation(gw, gw.operation_id(response))
            assert deleted["state"] == "COMPLETED", deleted
        await self.left_nothing(observer, spec, "delete after a resumed create")

    @pytest.mark.asyncio
    async def test_rollback_to_a_revision_not_in_the_history_is_refused_up_front(
        self,
        adapter: DMSAdapter,
        sample_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        tmp_path: Path,
    ) -> None:
        self.require_capability(adapter, Capability.ROLLBACK)
        self.require_capability(adapter, Capability.HISTORY)
        async with self.gateway_for(adapter, tmp_path) as gw:
            package_id = await self.onboard(gw, adapter, sample_package)
            deployment_id, operation_id = await self.create(
                gw, package_id, namespace, deployment_values, self.unique_name("kitrev")
            )
            assert (await self.settled_operation(gw, operation_id))["state"] == "COMPLETED"
            url = f"{BASE}/nfDeployments/{deployment_id}"
            response = await gw.post(f"{url}/rollback", json={"revision": 9999})
            assert 400 <= response.status_code < 500, (
                f"rollback to revision 9999 answered {response.status_code}; it must be refused "
                "before any operation exists"
            )
            ops = await gw.get(f"{BASE}/operations", params={"deploymentId": deployment_id})
            assert ops.json()["total"] == 1, "a refused request must not create an operation"
            stored = await self.deployment(gw, deployment_id)
            assert stored is not None
            assert stored["status"] == "DEPLOYED", stored
            delete = await gw.delete(url)
            assert delete.status_code == 202, delete.text
            await self.settled_operation(gw, gw.operation_id(delete))

    @pytest.mark.asyncio
    async def test_a_backend_dying_mid_call_is_failed_temp_and_retry_finishes_once(
        self,
        adapter: DMSAdapter,
        backend: KitBackend | None,
        sample_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
        tmp_path: Path,
    ) -> None:
        self.require_capability(adapter, Capability.DEPLOYMENT_LIFECYCLE)
        faults = self.faults(backend)
        name = self.unique_name("kitdie")
        async with self.gateway_for(adapter, tmp_path) as gw:
            package_id = await self.onboard(gw, adapter, sample_package)
            with faults.crashing():
                deployment_id, operation_id = await self.create(
                    gw, package_id, namespace, deployment_values, name
                )
                failed = await self.settled_operation(gw, operation_id)
            assert failed["state"] == "FAILED_TEMP", (
                f"a create whose backend died mid-call ended {failed['state']}"
            )
            retried = await gw.post(f"{BASE}/operations/{operation_id}/retry")
            assert retried.status_code == 202, retried.text
            done = await self.settled_operation(gw, operation_id)
            assert done["state"] == "COMPLETED", done
            spec = self.spec_for(name, namespace, deployment_values, deployment_id)
            seen = await self.observe(observer, spec)
            assert not seen.empty, "COMPLETED, but the backend holds nothing"
            delete = await gw.delete(f"{BASE}/nfDeployments/{deployment_id}")
            assert delete.status_code == 202, delete.text
            await self.settled_operation(gw, gw.operation_id(delete))
        await self.left_nothing(observer, spec, "delete after a retried create")

    @staticmethod
    def spec_for(
        name: str, namespace: str, values: dict[str, Any], deployment_id: str
    ) -> DeploymentSpec:
        """The spec an observer needs to find what a deployment created over HTTP left."""
        placeholder = PackageInfo(backend_ref="", name="", version="", package_type="")
        return DeploymentSpec(
            deployment_id=deployment_id,
            name=name,
            namespace=namespace,
            package=placeholder,
            values=values,
        )

"""What the backend holds, checked after every step through the ``observer`` fixture.

These tests never take the adapter's word: isolation of two deployments of one package, a
failed create leaving nothing half-applied, readiness gating DEPLOYED, a failing workload
reported FAILED, and a retried create changing nothing. (Create, update, upgrade, scale and
delete are checked against the backend in the lifecycle and operations tests.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

import pytest

from netweave.adapters import Capability, DMSAdapter, PackageInfo, PackageUpload
from netweave.errors import NetweaveError
from netweave.models import DeploymentStatus
from netweave.testing.kit.base import AdapterFixtures
from netweave.testing.kit.observe import (
    KitObserver,
    KitWorkloads,
    Observation,
    contains,
    names_in,
)

_FAILED_OR_DEPLOYED = frozenset({DeploymentStatus.FAILED, DeploymentStatus.DEPLOYED})


def _keys(seen: Observation) -> set[tuple[str, str, str | None]]:
    return {o.key for o in seen.objects}


def _versions(seen: Observation) -> dict[tuple[str, str, str | None], str | None]:
    return {o.key: o.version for o in seen.objects}


class BackendStateTests(AdapterFixtures):
    async def _cleanup(self, adapter: DMSAdapter, backend_ref: str) -> None:
        with contextlib.suppress(NetweaveError):
            await adapter.delete_deployment(backend_ref, self.ctx())
            await self.gone(adapter, backend_ref)

    def _workloads(self, observer: KitObserver) -> KitWorkloads:
        if not isinstance(observer, KitWorkloads):
            self.kit_skip(
                "the observer cannot steer workloads (no `workloads(spec, behavior)`, see "
                "netweave.testing.kit.KitWorkloads): readiness is not checked"
            )
        assert isinstance(observer, KitWorkloads)
        return observer

    @pytest.mark.asyncio
    async def test_two_deployments_of_one_package_stay_isolated(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        first = self.spec(onboarded_package, namespace, self.mark(deployment_values, "first"))
        second = self.spec(onboarded_package, namespace, self.mark(deployment_values, "second"))
        one = await self.deploy_spec(started_adapter, first)
        try:
            two = await self.deploy_spec(started_adapter, second)
        except BaseException:
            await self._cleanup(started_adapter, one.backend_ref)
            raise
        try:
            assert one.backend_ref != two.backend_ref, "two deployments got one backend_ref"
            seen_one = await self.observe(observer, first)
            seen_two = await self.observe(observer, second)
            for seen, which in ((seen_one, "first"), (seen_two, "second")):
                assert not seen.empty, (
                    "two deployments of one package in one namespace: the backend holds "
                    f"nothing for the {which}; for the other it holds "
                    f"{(seen_two if seen is seen_one else seen_one).describe()}"
                )
            shared = _keys(seen_one) & _keys(seen_two)
            assert not shared, f"two deployments share (overwrite) the objects {sorted(shared)}"
            assert names_in(seen_one, first.name) == names_in(seen_two, second.name), (
                "two deployments of one package hold different objects (one took the other's?): "
                f"first {seen_one.describe()}; second {seen_two.describe()}"
            )
            assert contains(seen_one.values, first.values), (
                "the second deployment overwrote the first one's values: the backend holds "
                f"{seen_one.describe()}"
            )
            await started_adapter.delete_deployment(one.backend_ref, self.ctx())
            await self.gone(started_adapter, one.backend_ref)
            await self.left_nothing(observer, first, "after deleting the first of two")
            after = await self.observe(observer, second)
            assert _keys(after) == _keys(seen_two), (
                "deleting one deployment changed the other one's objects: before "
                f"{seen_two.describe()}; after {after.describe()}"
            )
            assert contains(after.values, second.values), (
                f"deleting one deployment changed the other one's values: {after.describe()}"
            )
        finally:
            await self._cleanup(started_adapter, two.backend_ref)
            await self._cleanup(started_adapter, one.backend_ref)

    @pytest.mark.asyncio
    async def test_failed_create_is_reported_and_leaves_nothing_half_applied(
        self,
        started_adapter: DMSAdapter,
        failing_package: PackageUpload | None,
        namespace: str,
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        if failing_package is None:
            self.kit_skip(
                "no `failing_package` fixture (a package whose apply fails in the backend): "
                "undo-on-failure is not checked"
            )
        assert failing_package is not None
        package = await started_adapter.upload_package(failing_package)
        spec = self.spec(package, namespace, {})
        try:
            try:
                created = await started_adapter.create_deployment(spec, self.ctx())
            except NetweaveError as exc:
                assert exc.unmapped_exception_type is None, (
                    f"a failed apply let a backend exception ({exc.unmapped_exception_type}) escape"
                )
                # The gateway keeps no reference to a create that raised: nothing may stay.
                await self.left_nothing(
                    observer,
                    spec,
                    "a create that failed left its partial work behind (undo it: the gateway "
                    "keeps no reference to a failed create, so nothing would ever delete it)",
                )
                return
            info = await self.settle(started_adapter, created.backend_ref, _FAILED_OR_DEPLOYED)
            try:
                assert info.status is DeploymentStatus.FAILED, (
                    "the backend's apply failed but the adapter reports "
                    f"{info.status.value}; the backend holds "
                    f"{(await self.observe(observer, spec)).describe()}"
                )
                assert info.message, "a FAILED deployment must carry the backend's message"
            finally:
                await started_adapter.delete_deployment(created.backend_ref, self.ctx())
                await self.gone(started_adapter, created.backend_ref)
            await self.left_nothing(observer, spec, "deleting a failed deployment")
        finally:
            with contextlib.suppress(NetweaveError):
                await started_adapter.delete_package(package.backend_ref)

    @pytest.mark.asyncio
    async def test_readiness_gates_deployed(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        workloads = self._workloads(observer)
        spec = self.spec(onboarded_package, namespace, deployment_values)
        with workloads.workloads(spec, "slow"):
            created = await started_adapter.create_deployment(spec, self.ctx())
            try:
                deadline = time.monotonic() + self.settle_timeout
                info = created
                while True:
                    if info.status is DeploymentStatus.DEPLOYED:
                        seen = await self.observe(observer, spec)
                        assert seen.is_ready, (
                            "the adapter reports DEPLOYED while the backend's workloads are "
                            f"not ready: {seen.describe()}"
                        )
                        break
                    assert info.status is not DeploymentStatus.FAILED, (
                        f"a workload slow to become ready was reported FAILED: {info.message}"
                    )
                    assert time.monotonic() < deadline, (
                        f"never DEPLOYED within {self.settle_timeout:g} s (last "
                        f"{info.status.value}); the backend holds "
                        f"{(await self.observe(observer, spec)).describe()}"
                    )
                    await asyncio.sleep(self.poll_interval)
                    info = await started_adapter.get_deployment(created.backend_ref)
            finally:
                await self._cleanup(started_adapter, created.backend_ref)

    @pytest.mark.asyncio
    async def test_failed_workload_is_reported_failed(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        workloads = self._workloads(observer)
        spec = self.spec(onboarded_package, namespace, deployment_values)
        with workloads.workloads(spec, "fail"):
            try:
                created = await started_adapter.create_deployment(spec, self.ctx())
            except NetweaveError as exc:
                # An adapter that waits for readiness may fail the call itself: fine, if mapped.
                assert exc.unmapped_exception_type is None
                await self.left_nothing(observer, spec, "a create that failed left objects")
                return
            try:
                info = await self.settle(started_adapter, created.backend_ref, _FAILED_OR_DEPLOYED)
                seen = await self.observe(observer, spec)
                assert info.status is DeploymentStatus.FAILED, (
                    f"the backend's workloads failed but the adapter reports {info.status.value}:"
                    f" {seen.describe()}"
                )
                assert not seen.is_ready
            finally:
                await self._cleanup(started_adapter, created.backend_ref)

    @pytest.mark.asyncio
    async def test_retried_create_returns_the_first_result_without_a_second_change(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        spec = self.spec(onboarded_package, namespace, self.mark(deployment_values, "retry"))
        ctx = self.ctx()
        first = await started_adapter.create_deployment(spec, ctx)
        try:
            await self.settle(started_adapter, first.backend_ref)
            before = await self.observe(observer, spec)
            # The gateway retries a step after a crash or a lost answer with the same key.
            retried = dataclasses.replace(ctx, attempt=ctx.attempt + 1)
            try:
                again = await started_adapter.create_deployment(spec, retried)
            except NetweaveError as exc:
                raise AssertionError(
                    "a retried create with the same idempotency key failed with "
                    f"{type(exc).__name__}: {exc.message}; it must return the first result"
                ) from exc
            assert again.backend_ref == first.backend_ref, (
                f"the retried create returned {again.backend_ref!r}, not {first.backend_ref!r}"
            )
            after = await self.observe(observer, spec)
            assert (after.revision, _versions(after)) == (before.revision, _versions(before)), (
                "the retried create changed the backend a second time: before "
                f"{before.describe()}; after {after.describe()}"
            )
        finally:
            await self._cleanup(started_adapter, first.backend_ref)

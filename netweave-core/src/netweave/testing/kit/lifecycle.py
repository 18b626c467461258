"""Deployment lifecycle: create, get, update (values and upgrade), delete, concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netweave.adapters import (
    Capability,
    DeploymentChange,
    DMSAdapter,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import NotFound
from netweave.models import DeploymentStatus
from netweave.testing.kit.base import AdapterFixtures


def _contains(values: dict[str, Any] | None, expected: dict[str, Any]) -> bool:
    """Every key of ``expected`` (recursively) is in ``values`` with the same value."""
    if values is None:
        return False
    for key, want in expected.items():
        have = values.get(key)
        if isinstance(want, dict):
            if not isinstance(have, dict) or not _contains(have, want):
                return False
        elif have != want:
            return False
    return True


class DeploymentLifecycleTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_create_get_delete(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        info = await self.deploy(started_adapter, onboarded_package, namespace, deployment_values)
        assert info.status is DeploymentStatus.DEPLOYED
        assert info.revision >= 1, "a deployed deployment has revision 1 or more"
        again = await started_adapter.get_deployment(info.backend_ref)
        assert again.backend_ref == info.backend_ref
        await started_adapter.delete_deployment(info.backend_ref, self.ctx())
        await self.gone(started_adapter, info.backend_ref)

    @pytest.mark.asyncio
    async def test_update_values(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        changed_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        async with self.deployed(
            started_adapter, onboarded_package, namespace, deployment_values
        ) as info:
            await started_adapter.update_deployment(
                info.backend_ref, DeploymentChange(values=changed_values), self.ctx()
            )
            updated = await self.settle(started_adapter, info.backend_ref)
            assert updated.revision > info.revision, (
                "an update must create a new revision "
                f"(was {info.revision}, now {updated.revision})"
            )
            assert _contains(updated.values, changed_values), (
                f"updated values {changed_values!r} not visible in get_deployment: "
                f"{updated.values!r}"
            )

    @pytest.mark.asyncio
    async def test_upgrade_to_another_package_version(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        upgrade_package: PackageUpload | None,
        namespace: str,
        deployment_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        if upgrade_package is None:
            pytest.skip("no upgrade_package fixture: the adapter's tests give no second version")
        newer = await started_adapter.upload_package(upgrade_package)
        info = await self.deploy(started_adapter, onboarded_package, namespace, deployment_values)
        try:
            await started_adapter.update_deployment(
                info.backend_ref, DeploymentChange(package=newer), self.ctx()
            )
            upgraded = await self.settle(started_adapter, info.backend_ref)
            assert upgraded.package_version == newer.version, (
                f"after an upgrade get_deployment must report version {newer.version}, "
                f"got {upgraded.package_version}"
            )
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())
            await self.gone(started_adapter, info.backend_ref)
            await started_adapter.delete_package(newer.backend_ref)

    @pytest.mark.asyncio
    async def test_unknown_deployment_is_not_found(self, started_adapter: DMSAdapter) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        ref = self.unknown_deployment_ref(started_adapter)
        await self.expect_error(
            NotFound, started_adapter.get_deployment(ref), "get_deployment(unknown)"
        )

    @pytest.mark.asyncio
    async def test_concurrent_creates(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        count = 5
        infos = await asyncio.gather(
            *(
                self.deploy(started_adapter, onboarded_package, namespace, deployment_values)
                for _ in range(count)
            )
        )
        refs = {info.backend_ref for info in infos}
        try:
            assert len(refs) == count, "concurrent creates must give distinct deployments"
            assert all(info.status is DeploymentStatus.DEPLOYED for info in infos)
        finally:
            await asyncio.gather(
                *(started_adapter.delete_deployment(ref, self.ctx()) for ref in refs)
            )

    def unknown_deployment_ref(self, adapter: DMSAdapter) -> str:
        """A reference no deployment has; override if your references have a stricter form."""
        return "default/netweave-kit-missing"

"""Deployment lifecycle: create, get, update (values and upgrade), delete, concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netweave.adapters import (
    Capability,
    DeploymentChange,
    DeploymentSpec,
    DMSAdapter,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import NotFound
from netweave.models import DeploymentStatus
from netweave.testing.kit.base import AdapterFixtures
from netweave.testing.kit.observe import KitObserver, Observation, contains, flatten, names_in

MARK = "netweaveKitMark"


def _contains(values: dict[str, Any] | None, expected: dict[str, Any]) -> bool:
    """Every key of ``expected`` (recursively) is in ``values`` with the same value."""
    return contains(values, expected)


def _merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _check_created(seen: Observation, spec: DeploymentSpec) -> None:
    """The backend holds the deployment in the requested namespace with the requested values
    and package version."""
    assert not seen.empty, (
        "the adapter reported the deployment created, but the backend holds nothing for it"
    )
    wrong = seen.namespaces - {spec.namespace}
    assert not wrong, (
        f"the backend holds the deployment in {sorted(wrong)}, not in the requested namespace "
        f"{spec.namespace!r}: {seen.describe()}"
    )
    assert seen.values is not None, (
        "the observer reports no values: it must read the values the backend applied"
    )
    assert contains(seen.values, spec.values), (
        f"the backend does not hold the requested values {spec.values!r}: {seen.describe()}"
    )
    assert seen.package_version in (None, spec.package.version), (
        f"the backend runs package version {seen.package_version}, not the requested "
        f"{spec.package.version}"
    )


class DeploymentLifecycleTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_create_get_delete(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_LIFECYCLE)
        assert namespace != "default", "the kit deploys into a namespace of its own"
        spec = self.spec(onboarded_package, namespace, self.mark(deployment_values, "create"))
        info = await self.deploy_spec(started_adapter, spec)
        try:
            assert info.status is DeploymentStatus.DEPLOYED
            assert info.revision >= 1, "a deployed deployment has revision 1 or more"
            again = await started_adapter.get_deployment(info.backend_ref)
            assert again.backend_ref == info.backend_ref, (
                f"get_deployment({info.backend_ref!r}) answered for {again.backend_ref!r}"
            )
            _check_created(await self.observe(observer, spec), spec)
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())
        await self.gone(started_adapter, info.backend_ref)
        await self.left_nothing(observer, spec, "after delete")

    @pytest.mark.asyncio
    async def test_update_values(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        changed_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_UPDATE)
        spec = self.spec(onboarded_package, namespace, self.mark(deployment_values, "update"))
        info = await self.deploy_spec(started_adapter, spec)
        try:
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
            merged = _merged(spec.values, changed_values)
            seen = await self.observe_until(
                observer,
                spec,
                lambda s: contains(s.values, merged),
                f"after an update with values_mode=merge the backend must hold {merged!r}",
            )
            await started_adapter.update_deployment(
                info.backend_ref,
                DeploymentChange(values=changed_values, values_mode="replace"),
                self.ctx(),
            )
            await self.settle(started_adapter, info.backend_ref)
            seen = await self.observe_until(
                observer,
                spec,
                lambda s: contains(s.values, changed_values) and MARK not in flatten(s.values),
                f"after an update with values_mode=replace the backend must hold "
                f"{changed_values!r} and no longer the replaced {MARK!r}",
            )
            assert seen.values is not None
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())

    @pytest.mark.asyncio
    async def test_upgrade_to_another_package_version(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        upgrade_package: PackageUpload | None,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.DEPLOYMENT_UPDATE)
        if upgrade_package is None:
            self.kit_skip("no upgrade_package fixture: the adapter's tests give no second version")
        assert upgrade_package is not None
        newer = await started_adapter.upload_package(upgrade_package)
        try:
            # What the new version holds when installed afresh, to compare the upgrade with.
            fresh_spec = self.spec(newer, namespace, deployment_values)
            fresh = await self.deploy_spec(started_adapter, fresh_spec)
            try:
                fresh_names = names_in(await self.observe(observer, fresh_spec), fresh_spec.name)
            finally:
                await started_adapter.delete_deployment(fresh.backend_ref, self.ctx())
                await self.gone(started_adapter, fresh.backend_ref)
            spec = self.spec(onboarded_package, namespace, deployment_values)
            info = await self.deploy_spec(started_adapter, spec)
            try:
                old_names = names_in(await self.observe(observer, spec), spec.name)
                assert old_names - fresh_names, (
                    "upgrade_package must drop an object sample_package has (so the kit can "
                    f"check an upgrade removes it); both hold {sorted(old_names)}"
                )
                await started_adapter.update_deployment(
                    info.backend_ref, DeploymentChange(package=newer), self.ctx()
                )
                upgraded = await self.settle(started_adapter, info.backend_ref)
                assert upgraded.package_version == newer.version, (
                    f"after an upgrade get_deployment must report version {newer.version}, "
                    f"got {upgraded.package_version}"
                )
                seen = await self.observe_until(
                    observer,
                    spec,
                    lambda s: s.package_version == newer.version,
                    f"after the upgrade the backend must run package version {newer.version}",
                )
                seen = await self.observe_until(
                    observer,
                    spec,
                    lambda s: names_in(s, spec.name) == fresh_names,
                    f"after the upgrade the backend must hold what version {newer.version} "
                    f"holds ({sorted(fresh_names)}), without what it dropped "
                    f"({sorted(old_names - fresh_names)})",
                )
                assert seen.package_version == newer.version
            finally:
                await started_adapter.delete_deployment(info.backend_ref, self.ctx())
                await self.gone(started_adapter, info.backend_ref)
        finally:
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

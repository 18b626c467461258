"""netweave's conformance kit against the Argo CD adapter and the emulator.

The emulator steps its controller on every app GET here (``auto_tick``), so the kit's polling
sees Applications move on as with a live Argo CD.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from argo_emulator import ArgoEmulator
from argo_observer import ArgoObserver
from conftest import CHARTS, helm_upload, make_config
from netweave.adapters import DeploymentChange, DMSAdapter, PackageInfo, PackageUpload
from netweave.errors import NotFound
from netweave.testing.kit import AdapterTestSuite, KitObserver, kit_override
from netweave_argocd.adapter import ArgoCDAdapter


class Outage:
    """The kit's handle on the emulator: an outage, and its KitFaults (failing, crashing)."""

    def __init__(self, argo: ArgoEmulator) -> None:
        self.argo = argo

    @contextmanager
    def outage(self) -> Iterator[None]:
        self.argo.down = True
        try:
            yield
        finally:
            self.argo.down = False

    def failing(self, message: str) -> AbstractContextManager[None]:
        return self.argo.failing(message)

    def crashing(self) -> AbstractContextManager[None]:
        return self.argo.crashing()


class TestArgoCDConformance(AdapterTestSuite):
    @pytest.fixture
    def adapter(self, argo: ArgoEmulator) -> DMSAdapter:
        argo.auto_tick = True
        return ArgoCDAdapter("argo", make_config(argo))

    @pytest.fixture
    def sample_package(self) -> PackageUpload:
        return helm_upload("1.0.0")

    @pytest.fixture
    def upgrade_package(self) -> PackageUpload:
        return helm_upload("1.1.0")

    @pytest.fixture
    def observer(self, argo: ArgoEmulator) -> KitObserver:
        return ArgoObserver(argo)

    @pytest.fixture
    def failing_package(self, argo: ArgoEmulator) -> PackageUpload:
        # A chart version in the repository whose Deployment the cluster refuses.
        argo.helm_repos[CHARTS]["web"].append("6.6.6")
        argo.failing_charts.add(("web", "6.6.6"))
        return helm_upload("6.6.6")

    @kit_override(
        "the Argo CD emulator's cluster runs the same objects for every chart version (it "
        "renders no charts), so an upgrade cannot be seen dropping one; checked instead: the "
        "Application's synced source runs the new version with the same values"
    )
    async def test_upgrade_to_another_package_version(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        upgrade_package: PackageUpload,
        namespace: str,
        observer: KitObserver,
    ) -> None:
        newer = await started_adapter.upload_package(upgrade_package)
        spec = self.spec(onboarded_package, namespace, self.mark({}, "upgrade"))
        info = await self.deploy_spec(started_adapter, spec)
        try:
            await started_adapter.update_deployment(
                info.backend_ref, DeploymentChange(package=newer), self.ctx()
            )
            upgraded = await self.settle(started_adapter, info.backend_ref)
            assert upgraded.package_version == newer.version
            seen = await self.observe_until(
                observer,
                spec,
                lambda s: s.package_version == newer.version,
                f"the Application must run {newer.version} after the upgrade",
            )
            assert seen.values is not None
            assert seen.values.get("netweaveKitMark") == "upgrade", "the upgrade lost the values"
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())

    @pytest.fixture
    def backend(self, argo: ArgoEmulator) -> Outage:
        return Outage(argo)

    def unknown_ref_for_outage(self) -> str:
        # A ref in this adapter's application namespace, so the call does reach Argo CD.
        return "argocd/netweave-kit-outage"

    @kit_override(
        "Stateless by design: a package's backend_ref is its encoded Argo CD source, so it "
        "stays readable after delete_package and list_packages only shows sources in use; "
        "registration state (and deletion) lives in the gateway's store. Replaced by the same "
        "checks minus those two."
    )
    async def test_upload_get_list_delete(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> None:
        info = await started_adapter.upload_package(sample_package)
        assert (info.name, info.version) == (sample_package.name, sample_package.version)
        assert info.package_type in type(started_adapter).PACKAGE_TYPES
        got = await started_adapter.get_package(info.backend_ref)
        assert (got.backend_ref, got.name, got.version) == (info.backend_ref, "web", "1.0.0")
        await started_adapter.delete_package(info.backend_ref)
        with pytest.raises(NotFound):
            await started_adapter.get_package("helm:not-a-source")

    @kit_override(
        "Stateless by design: the adapter cannot know a source was registered before; the "
        "gateway's store refuses a duplicate name+version with 409 (checked through the API "
        "in test_gateway_http.py). Registering the same source twice gives the same reference."
    )
    async def test_duplicate_upload_is_already_exists(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> None:
        first = await started_adapter.upload_package(sample_package)
        second = await started_adapter.upload_package(sample_package)
        assert first.backend_ref == second.backend_ref

"""netweave's adapter conformance kit, run against the OSM adapter and the NBI emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import DeploymentChange, DMSAdapter, PackageInfo, PackageUpload
from netweave.testing.kit import AdapterTestSuite, KitBackend, KitObserver, kit_override
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_helpers import make_config
from osm_observer import OsmObserver
from osm_packages import archive, knf_vnfd, nsd

#: The chart of the KNF behind the kit's failing package.
BROKEN_CHART = "stable/broken:6.6.6"


class TestOsmConformance(AdapterTestSuite):
    settle_timeout = 30.0

    @pytest.fixture
    async def adapter(self, emulator: OsmNbiEmulator, tmp_path: Path) -> DMSAdapter:
        # The kit deploys its sample package, an NS descriptor: onboard the KNF it references.
        setup = OsmAdapter("osm-setup", make_config(emulator))
        await setup.start()
        for vnfd_id, chart, version in (
            ("kit-knf", "stable/app:1.0.0", "1.0"),
            ("kit-knf-v2", "stable/app:1.1.0", "2.0"),
            ("kit-knf-broken", BROKEN_CHART, "1.0"),
        ):
            await setup.upload_package(
                PackageUpload(
                    name=vnfd_id,
                    version=version,
                    archive=archive(tmp_path, knf_vnfd(vnfd_id, {"app": chart}, version)),
                )
            )
        await setup.stop()
        return OsmAdapter("osm-kit", make_config(emulator))

    @pytest.fixture
    def sample_package(self, tmp_path: Path) -> PackageUpload:
        path = archive(tmp_path, nsd("kit-ns", {"app": "kit-knf"}, "1.0"), fmt="zip")
        return PackageUpload(name="kit-ns", version="1.0", package_type="nsd", archive=path)

    @pytest.fixture
    def upgrade_package(self, tmp_path: Path) -> PackageUpload:
        # OSM keys descriptors by id: a newer version is an NSD of its own (same members and
        # KDU names, newer chart), so its name differs from the sample's.
        path = archive(tmp_path, nsd("kit-ns-v2", {"app": "kit-knf-v2"}, "2.0"))
        return PackageUpload(name="kit-ns-v2", version="2.0", package_type="nsd", archive=path)

    @pytest.fixture
    def failing_package(self, emulator: OsmNbiEmulator, tmp_path: Path) -> PackageUpload:
        # An NS whose KNF's chart LCM cannot install.
        emulator.failing_charts.add(BROKEN_CHART)
        path = archive(tmp_path, nsd("kit-ns-broken", {"app": "kit-knf-broken"}, "1.0"))
        return PackageUpload(name="kit-ns-broken", version="1.0", package_type="nsd", archive=path)

    @pytest.fixture
    def deployment_values(self) -> dict[str, Any]:
        return {"replicaCount": 1, "image": {"tag": "1.0.0"}}

    @pytest.fixture
    def backend(self, emulator: OsmNbiEmulator) -> KitBackend:
        return emulator

    @pytest.fixture
    def observer(self, emulator: OsmNbiEmulator) -> KitObserver:
        return OsmObserver(emulator)

    @kit_override(
        "OSM keys descriptors by id, so a newer version is an NSD of its own with the same "
        "members and KDUs (a newer chart): there is no object an upgrade could drop. Checked "
        "instead, in the emulator's records: the KDU runs the new chart with the same values"
    )
    async def test_upgrade_to_another_package_version(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        upgrade_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        newer = await started_adapter.upload_package(upgrade_package)
        spec = self.spec(onboarded_package, namespace, deployment_values)
        info = await self.deploy_spec(started_adapter, spec)
        try:
            await started_adapter.update_deployment(
                info.backend_ref, DeploymentChange(package=newer), self.ctx()
            )
            upgraded = await self.settle(started_adapter, info.backend_ref)
            assert upgraded.package_version == newer.version
            await self.observe_until(
                observer,
                spec,
                lambda s: (
                    bool(s.objects) and all(o.images == ("stable/app:1.1.0",) for o in s.objects)
                ),
                "after the upgrade every KDU must run the new version's chart",
            )
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())

    def unknown_deployment_ref(self, adapter: DMSAdapter) -> str:
        return "0f0e0d0c-0b0a-4009-8807-060504030201"

    def unknown_ref_for_outage(self) -> str:
        return "0f0e0d0c-0b0a-4009-8807-060504030202"

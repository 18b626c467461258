"""The plain-manifests reference adapter passes the whole conformance kit against the
Kubernetes API emulator (through the real kubernetes client), observed by its owner labels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from netweave.adapters import DMSAdapter, PackageUpload
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.kit import AdapterTestSuite, KitObserver, KubernetesObserver, kit_override

from .manifests_adapter import (
    FAILING_MANIFESTS,
    OWNER_LABELS,
    ManifestsAdapter,
    ManifestsConfig,
    app_manifests,
    manifests_archive,
    values_record,
)


class Outage:
    def __init__(self, emulator: KubernetesEmulator) -> None:
        self.emulator = emulator

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        fault = self.emulator.faults.error(503, times=None)
        try:
            yield
        finally:
            fault.remove()


class TestManifestsAdapter(AdapterTestSuite):
    settle_timeout = 10.0
    adapter_class: type[ManifestsAdapter] = ManifestsAdapter

    @pytest.fixture
    def adapter(self, k8s_emulator: KubernetesEmulator) -> DMSAdapter:
        config = ManifestsConfig.model_validate(
            {"kubeUrl": k8s_emulator.url, "timeouts": {"read": 5, "write": 10}}
        )
        return self.adapter_class("manifests-kit", config)

    @pytest.fixture
    def observer(self, k8s_emulator: KubernetesEmulator) -> KitObserver:
        return KubernetesObserver(k8s_emulator, labels=OWNER_LABELS, record=values_record)

    @pytest.fixture
    def backend(self, k8s_emulator: KubernetesEmulator) -> Outage:
        return Outage(k8s_emulator)

    @pytest.fixture
    def sample_package(self, tmp_path: Path) -> PackageUpload:
        archive = manifests_archive(tmp_path / "demo-1.0.0.tgz", app_manifests())
        return PackageUpload(
            name="demo", version="1.0.0", package_type="manifests", archive=archive
        )

    @pytest.fixture
    def upgrade_package(self, tmp_path: Path) -> PackageUpload:
        # 1.1.0 drops the ConfigMap: an upgrade must remove it.
        archive = manifests_archive(tmp_path / "demo-1.1.0.tgz", app_manifests(with_config=False))
        return PackageUpload(
            name="demo", version="1.1.0", package_type="manifests", archive=archive
        )

    @pytest.fixture
    def failing_package(self, tmp_path: Path) -> PackageUpload:
        archive = manifests_archive(tmp_path / "broken.tgz", [], raw=FAILING_MANIFESTS)
        return PackageUpload(
            name="broken", version="1.0.0", package_type="manifests", archive=archive
        )

    @kit_override(reason="the reference adapter is not an installed distribution")
    def test_entry_point_discovery(self, adapter: DMSAdapter) -> None:
        # Discovery through a real installed distribution is tested in tests/loading.
        assert type(adapter).info().type == "manifests"

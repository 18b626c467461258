"""The example adapter passes the whole conformance kit."""

from __future__ import annotations

from pathlib import Path

import pytest
from netweave.adapters import AdapterConfig, DMSAdapter, PackageUpload
from netweave.testing.kit import AdapterTestSuite, KitBackend, KitObserver, kit_override

from .example_adapter import ExampleAdapter, ExampleBackend, ExampleObserver


class TestExampleAdapter(AdapterTestSuite):
    settle_timeout = 5.0

    @pytest.fixture
    def example_backend(self) -> ExampleBackend:
        return ExampleBackend()

    @pytest.fixture
    def adapter(self, example_backend: ExampleBackend) -> DMSAdapter:
        return ExampleAdapter("example-1", AdapterConfig(), example_backend)

    @pytest.fixture
    def backend(self, example_backend: ExampleBackend) -> KitBackend:
        return example_backend

    @pytest.fixture
    def observer(self, example_backend: ExampleBackend) -> KitObserver:
        return ExampleObserver(example_backend)

    @pytest.fixture
    def sample_package(self, tmp_path: Path) -> PackageUpload:
        archive = tmp_path / "demo-1.0.0.tgz"
        archive.write_bytes(b"ConfigMap Deployment")
        return PackageUpload(name="demo", version="1.0.0", package_type="example", archive=archive)

    @pytest.fixture
    def upgrade_package(self, tmp_path: Path) -> PackageUpload:
        archive = tmp_path / "demo-1.1.0.tgz"
        archive.write_bytes(b"Deployment")  # 1.1.0 drops the ConfigMap
        return PackageUpload(name="demo", version="1.1.0", package_type="example", archive=archive)

    @kit_override(reason="the example adapter is not an installed distribution")
    def test_entry_point_discovery(self, adapter: DMSAdapter) -> None:
        # Discovery through a real installed distribution is tested in tests/loading.
        assert type(adapter).info().type == "example"

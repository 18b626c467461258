"""netweave's conformance kit against the Helm adapter: ChartMuseum-style storage (the test
server) and the Kubernetes API emulator, so the kit can also cut both off (outage test)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from chartmuseum import Museum, run_chartmuseum
from netweave.adapters import DMSAdapter, PackageUpload
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.kit import AdapterTestSuite
from netweave_helm.adapter import HelmAdapter
from netweave_helm.config import HelmConfig

TEMPLATES = {"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT}


class HelmBackend:
    """Both halves of the Helm backend: chart storage and the cluster."""

    def __init__(self, museum: Museum, k8s: KubernetesEmulator) -> None:
        self.museum = museum
        self.k8s = k8s

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.museum.down = True
        fault = self.k8s.faults.error(503, times=None)
        try:
            yield
        finally:
            fault.remove()
            self.museum.down = False


@pytest.fixture
def museum_url() -> Iterator[tuple[Museum, str]]:
    museum = Museum()
    with run_chartmuseum(museum) as url:
        yield museum, url


class TestHelmAdapterConformance(AdapterTestSuite):
    @pytest.fixture
    def adapter(
        self, museum_url: tuple[Museum, str], k8s_kubeconfig: Path, tmp_path: Path
    ) -> DMSAdapter:
        _, url = museum_url
        config = HelmConfig.model_validate(
            {
                "dataDir": str(tmp_path / "data"),
                "storage": {"kind": "chartmuseum", "url": url},
                "cluster": {"kubeconfig": str(k8s_kubeconfig), "namespace": "kit"},
                "httpTimeout": 5,
            }
        )
        return HelmAdapter("helm-kit", config)

    @pytest.fixture
    def backend(
        self, museum_url: tuple[Museum, str], k8s_emulator: KubernetesEmulator
    ) -> HelmBackend:
        return HelmBackend(museum_url[0], k8s_emulator)

    @pytest.fixture
    def sample_package(self, tmp_path: Path) -> PackageUpload:
        archive = build_chart(tmp_path / "kit-1", "kit-app", "1.0.0", templates=TEMPLATES)
        return PackageUpload(name="kit-app", version="1.0.0", package_type="helm", archive=archive)

    @pytest.fixture
    def upgrade_package(self, tmp_path: Path) -> PackageUpload:
        archive = build_chart(tmp_path / "kit-2", "kit-app", "1.1.0", templates=TEMPLATES)
        return PackageUpload(name="kit-app", version="1.1.0", package_type="helm", archive=archive)

    @pytest.fixture
    def namespace(self) -> str:
        return "kit"

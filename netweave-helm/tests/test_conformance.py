"""netweave's conformance kit against the Helm adapter: ChartMuseum-style storage (the test
server) and the Kubernetes API emulator, so the kit can also cut both off (outage test).

The kit observes the cluster itself: the objects Helm annotates with the release's name (in any
namespace) and Helm's release storage (the latest ``sh.helm.release.v1`` Secret: values,
chart version, revision, status).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from chartmuseum import Museum, run_chartmuseum
from netweave.adapters import DeploymentSpec, DMSAdapter, PackageUpload
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.k8s.faults import WRITE_METHODS
from netweave.testing.kit import AdapterTestSuite, KitObserver, KubernetesObserver, Observation
from netweave_helm.adapter import HelmAdapter
from netweave_helm.config import HelmConfig

TEMPLATES = {"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT}
#: A Deployment the API server refuses (replicas is text): the ConfigMap before it goes in.
BROKEN_DEPLOYMENT = DEPLOYMENT.replace("{{ .Values.replicaCount }}", '"three"')


def release_record(
    emulator: KubernetesEmulator, spec: DeploymentSpec, objects: list[dict[str, Any]]
) -> Observation:
    """The latest revision in Helm's release storage for the release named like the spec."""
    secrets = emulator.list("v1", "Secret", None, f"owner=helm,name={spec.name}")
    if not secrets:
        return Observation()
    latest = max(secrets, key=lambda s: int(s["metadata"]["labels"]["version"]))
    raw = base64.b64decode(base64.b64decode(latest["data"]["release"]))
    release = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return Observation(
        present=True,
        values=release.get("config") or {},
        package_version=release["chart"]["metadata"]["version"],
        revision=int(release["version"]),
        namespace=release.get("namespace"),
        detail=f"release status {release['info']['status']}",
    )


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

    @contextlib.contextmanager
    def failing(self, message: str) -> Iterator[None]:
        """KitFaults: a validating admission webhook denies every change to the release's
        objects (not Helm's release Secrets, which it records the failed revision in)."""
        fault = self.k8s.faults.error(
            400,
            path=re.compile(r"^(?!/api/v1/namespaces/[^/]+/secrets)"),
            method=frozenset({"POST", "PUT", "PATCH"}),
            times=None,
            message=f'admission webhook "kit.netweave.test" denied the request: {message}',
        )
        try:
            yield
        finally:
            fault.remove()

    @contextlib.contextmanager
    def crashing(self) -> Iterator[None]:
        """KitFaults: the API server drops every write request before answering."""
        fault = self.k8s.faults.reset(method=WRITE_METHODS, times=None)
        try:
            yield
        finally:
            fault.remove()


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
                # The kit's readiness tests need Helm to wait for the workloads.
                "cluster": {
                    "kubeconfig": str(k8s_kubeconfig),
                    "namespace": "kit",
                    "wait": "watcher",
                    "operationTimeout": 5,
                },
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
        # 1.1.0 drops the ConfigMap: an upgrade must remove it.
        archive = build_chart(
            tmp_path / "kit-2", "kit-app", "1.1.0", templates={"deployment.yaml": DEPLOYMENT}
        )
        return PackageUpload(name="kit-app", version="1.1.0", package_type="helm", archive=archive)

    @pytest.fixture
    def failing_package(self, tmp_path: Path) -> PackageUpload:
        templates = {"configmap.yaml": CONFIGMAP, "deployment.yaml": BROKEN_DEPLOYMENT}
        archive = build_chart(tmp_path / "kit-3", "kit-broken", "1.0.0", templates=templates)
        return PackageUpload(
            name="kit-broken", version="1.0.0", package_type="helm", archive=archive
        )

    @pytest.fixture
    def observer(self, k8s_emulator: KubernetesEmulator) -> KitObserver:
        return KubernetesObserver(
            k8s_emulator,
            annotations={"meta.helm.sh/release-name": "{name}"},
            record=release_record,
        )

"""netweave's conformance kit against the Flux adapter in cluster mode: the K8s emulator with the
real Flux CRDs and the simulated Flux controllers; the outage cuts the API server off (503).

The kit observes the cluster: the HelmRelease named like the deployment (in any namespace: its
values, and the chart version and revision of its latest deployed history entry) and the
objects labelled with its Helm release's name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_adapter
from flux_sim import FluxSimulator
from gitserver import FluxGitSync, GitDaemon, bare_repo
from netweave.adapters import DeploymentSpec, DMSAdapter, PackageUpload
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.k8s.faults import WRITE_METHODS
from netweave.testing.kit import AdapterTestSuite, KitObserver, KubernetesObserver, Observation
from netweave_flux.adapter import FluxAdapter
from netweave_flux.config import FluxConfig


class ClusterBackend:
    def __init__(self, emulator: KubernetesEmulator, flux: FluxSimulator) -> None:
        self.emulator = emulator
        self.flux = flux

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        fault = self.emulator.faults.error(503, times=None)
        try:
            yield
        finally:
            fault.remove()

    def failing(self, message: str) -> contextlib.AbstractContextManager[None]:
        """KitFaults: Flux's controllers fail every release with the message (Ready=False)."""
        return self.flux.failing(message)

    @contextlib.contextmanager
    def crashing(self) -> Iterator[None]:
        """KitFaults: the API server drops every write request before answering."""
        fault = self.emulator.faults.reset(method=WRITE_METHODS, times=None)
        try:
            yield
        finally:
            fault.remove()


def _helmrelease(emulator: KubernetesEmulator, spec: DeploymentSpec) -> dict[str, Any] | None:
    found = [
        hr
        for hr in emulator.list("helm.toolkit.fluxcd.io/v2", "HelmRelease")
        if hr["metadata"]["name"] == spec.name
    ]
    return found[0] if found else None


class FluxObserver(KubernetesObserver):
    """Objects labelled with the HelmRelease's Helm release name; values and history from it."""

    def __init__(self, emulator: KubernetesEmulator) -> None:
        super().__init__(
            emulator, labels={"app.kubernetes.io/managed-by": "Helm"}, record=self._record
        )

    @staticmethod
    def _release(hr: dict[str, Any]) -> str:
        target = hr["spec"].get("targetNamespace") or hr["metadata"]["namespace"]
        return str(hr["spec"].get("releaseName") or f"{target}-{hr['metadata']['name']}")

    def objects(self, spec: DeploymentSpec) -> list[dict[str, Any]]:
        hr = _helmrelease(self.emulator, spec)
        if hr is None:
            return []
        release = self._release(hr)
        return [
            o
            for o in super().objects(spec)
            if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == release
        ]

    def _record(
        self, emulator: KubernetesEmulator, spec: DeploymentSpec, objects: list[dict[str, Any]]
    ) -> Observation:
        hr = _helmrelease(emulator, spec)
        if hr is None:
            return Observation()
        history = (hr.get("status") or {}).get("history") or []
        deployed = next((h for h in history if h.get("status") == "deployed"), None)
        return Observation(
            present=True,
            values=hr["spec"].get("values") or {},
            package_version=deployed["chartVersion"] if deployed else None,
            revision=int(deployed["version"]) if deployed else None,
            namespace=hr["spec"].get("targetNamespace") or hr["metadata"]["namespace"],
            detail=f"HelmRelease conditions {(hr.get('status') or {}).get('conditions')}",
        )


def _helm(version: str) -> PackageUpload:
    return PackageUpload(
        name="kit-app",
        version=version,
        package_type="helm",
        package_uri="https://charts.example.org/stable",
        source={"chart": "kit-app"},
    )


class TestFluxAdapterConformance(AdapterTestSuite):
    settle_timeout = 30.0

    @pytest.fixture(autouse=True)
    def kit_namespace(self, emulator: KubernetesEmulator, namespace: str) -> None:
        # HelmReleases live in the namespace asked for; the adapter refuses a missing one.
        emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    @pytest.fixture
    def adapter(self, kubeconfig: Path, flux: FluxSimulator) -> DMSAdapter:
        return make_adapter(kubeconfig)

    @pytest.fixture
    def observer(self, emulator: KubernetesEmulator, flux: FluxSimulator) -> KitObserver:
        # 1.0.0's chart also holds a ConfigMap that 1.1.0 dropped (the upgrade must remove it).
        flux.config_chart_versions.add("1.0.0")
        return FluxObserver(emulator)

    @pytest.fixture
    def failing_package(self, flux: FluxSimulator) -> PackageUpload:
        flux.failing_chart_versions.add("9.9.9")
        return _helm("9.9.9")

    @pytest.fixture
    def backend(self, emulator: KubernetesEmulator, flux: FluxSimulator) -> ClusterBackend:
        return ClusterBackend(emulator, flux)

    @pytest.fixture
    def sample_package(self) -> PackageUpload:
        return _helm("1.0.0")

    @pytest.fixture
    def upgrade_package(self) -> PackageUpload:
        return _helm("1.1.0")

    def unknown_ref_for_outage(self) -> str:
        # Deployment references name their kind (``<ns>/<Kind>/<name>``); a reference of another
        # shape is NotFound without asking the cluster.
        return "apps/HelmRelease/netweave-kit-outage"

    def unknown_deployment_ref_for(self, namespace: str, name: str) -> str:
        # Every sample package here is a chart: its deployments are HelmReleases.
        return f"{namespace}/HelmRelease/{name}"


class GitBackend:
    """Git mode's two halves: the Git server (writes and desired state) and the cluster."""

    def __init__(
        self, daemon: GitDaemon, emulator: KubernetesEmulator, flux: FluxSimulator
    ) -> None:
        self.daemon = daemon
        self.emulator = emulator
        self.flux = flux

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.daemon.stop()
        fault = self.emulator.faults.error(503, times=None)
        try:
            yield
        finally:
            fault.remove()
            self.daemon.start()

    def failing(self, message: str) -> contextlib.AbstractContextManager[None]:
        """KitFaults: the push lands; Flux's controllers fail the release (Ready=False)."""
        return self.flux.failing(message)

    def crashing(self) -> contextlib.AbstractContextManager[None]:
        """KitFaults: the Git server drops every push before answering."""
        return self.daemon.crashing()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    root = tmp_path / "srv"
    root.mkdir()
    bare_repo(root, "fleet.git")
    server = GitDaemon(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TestFluxAdapterConformanceGitMode(TestFluxAdapterConformance):
    """The same kit with the adapter committing to Git and a Flux sync applying the branch."""

    @pytest.fixture
    def adapter(
        self, kubeconfig: Path, flux: FluxSimulator, daemon: GitDaemon, tmp_path: Path
    ) -> Iterator[DMSAdapter]:
        url = f"{daemon.url}/fleet.git"
        # The sync's errors during the outage test are expected (the server is down then).
        with FluxGitSync(flux.emulator, url, tmp_path / "flux-sync", "clusters/kit"):
            yield FluxAdapter(
                "flux-kit-git",
                FluxConfig.model_validate(
                    {
                        "mode": "git",
                        "cluster": {"kubeconfig": str(kubeconfig), "connectRetries": 0},
                        "timeouts": {"read": 20, "write": 60},
                        "git": {"url": url, "path": "clusters/kit", "workdir": str(tmp_path / "w")},
                    }
                ),
            )

    @pytest.fixture
    def backend(  # type: ignore[override]
        self, emulator: KubernetesEmulator, daemon: GitDaemon, flux: FluxSimulator
    ) -> GitBackend:
        return GitBackend(daemon, emulator, flux)

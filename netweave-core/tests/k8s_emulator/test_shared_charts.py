"""The real-world charts in the shared folder install like on a cluster (or fail like on one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as hp
import pytest
from netweave.testing.k8s import MULTUS_CRD, KubernetesEmulator

from .conftest import shared_file

VELERO_VALUES = {
    "configuration": {
        "backupStorageLocation": [{"name": "default", "provider": "aws", "bucket": "b"}],
        "volumeSnapshotLocation": [{"name": "default", "provider": "aws"}],
    }
}


@pytest.fixture
def helm_cfg(helm_home: Path, k8s_emulator: KubernetesEmulator) -> Iterator[Any]:
    cfg = k8s_emulator.helm_config()
    yield cfg
    cfg.close()


def _load(name: str) -> Any:
    return hp.Chart.load_archive(shared_file("charts", name).read_bytes())


@pytest.mark.parametrize(
    ("archive", "values"),
    [
        ("nginx-21.1.23.tgz", None),
        ("traefik-41.3.0.tgz", None),
        ("velero-12.1.0.tgz", VELERO_VALUES),
    ],
)
def test_chart_lifecycle(
    archive: str, values: dict[str, Any] | None, helm_cfg: Any, k8s_emulator: KubernetesEmulator
) -> None:
    chart = _load(archive)
    try:
        rel = helm_cfg.install(chart, "demo", values, wait="watcher", timeout=30)
        assert rel["status"] == "deployed"
        up = helm_cfg.upgrade(chart, "demo", values, wait="watcher", timeout=30)
        assert up["revision"] == 2
        helm_cfg.rollback("demo", version=1, wait="watcher", timeout=30)
        helm_cfg.uninstall("demo", wait="watcher", timeout=30)
    finally:
        chart.close()
    assert helm_cfg.list(all_states=True) == []
    assert k8s_emulator.controllers.errors == []


def test_traefik_crds_are_served(helm_cfg: Any, k8s_emulator: KubernetesEmulator) -> None:
    chart = _load("traefik-41.3.0.tgz")
    try:
        helm_cfg.install(chart, "edge", wait="watcher", timeout=30)
    finally:
        chart.close()
    crds = k8s_emulator.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert len(crds) == 25
    assert k8s_emulator.core.registry.get("traefik.io", "v1alpha1", "ingressroutes") is not None


def test_velero_default_values_are_refused_like_a_cluster(helm_cfg: Any) -> None:
    # The chart renders `provider:` (null); the apiserver prunes the null and then
    # finds the required field missing: 422, so Helm fails.
    chart = _load("velero-12.1.0.tgz")
    try:
        with pytest.raises(hp.HelmError, match=r"spec\.provider: Required value"):
            helm_cfg.install(chart, "velero", timeout=30)
    finally:
        chart.close()


def test_free5gc_needs_multus_crd_then_installs_and_tests(
    helm_cfg: Any, k8s_emulator: KubernetesEmulator
) -> None:
    chart = _load("free5gc-1.1.7.tgz")
    try:
        with pytest.raises(hp.HelmError, match='no matches for kind "NetworkAttachmentDefinition"'):
            helm_cfg.install(chart, "core", timeout=30)
        k8s_emulator.install_crd(MULTUS_CRD)
        rel = helm_cfg.install(chart, "core", wait="watcher", timeout=60)
        assert rel["status"] == "deployed"
        result = helm_cfg.test("core", timeout=60, logs=True)
        assert result["logs"].count("POD LOGS:") == 9
        helm_cfg.uninstall("core", wait="watcher", timeout=60)
    finally:
        chart.close()


def test_ric_infrastructure_needs_its_namespaces(
    helm_cfg: Any, k8s_emulator: KubernetesEmulator
) -> None:
    chart = _load("infrastructure-3.0.0.tgz")
    try:
        with pytest.raises(hp.HelmError, match=r'namespaces "ric[a-z]+" not found'):
            helm_cfg.install(chart, "ric", timeout=30)
        helm_cfg.uninstall("ric", timeout=30)
        for ns in ("ricinfra", "ricplt", "ricxapp"):
            k8s_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        rel = helm_cfg.install(chart, "ric", wait="watcher", timeout=60)
        assert rel["status"] == "deployed"
        helm_cfg.uninstall("ric", wait="watcher", timeout=60)
    finally:
        chart.close()

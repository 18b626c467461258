"""Flux deployments are watched (list+watch with resourceVersion and bookmarks), not polled:
through the gateway's HTTP API with polling effectively off (a 600 s interval and resync), a
HelmRelease that stalls behind the gateway's back, or a workload deleted, is recorded and
notified from the watch; a watch whose resourceVersion expired (410 Gone, after a compaction)
while its change happened relists and records the change."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import flux_gateway_settings
from flux_sim import FluxSimulator
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from netweave.adapters import kubewatch
from netweave.config import ReconcileSettings
from netweave.testing.etsi_notify import CallbackSink
from netweave.testing.gateway import GatewayClient, running_gateway
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.polling import until
from netweave.testing.reconcile import fast_polling, notified, recorded_until, stored, subscribe
from test_health import HR, deploy

#: The collections the Flux watch lists and watches (not the reads of one object).
WATCHED = re.compile(
    r"^/apis/(helm\.toolkit\.fluxcd\.io/v2/helmreleases|kustomize\.toolkit\.fluxcd\.io/v1/"
    r"kustomizations|apps/v1/(deployments|statefulsets|daemonsets)|batch/v1/jobs)$"
)
HELMRELEASES = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases"


@pytest.fixture
async def gw(
    kubeconfig: Path, flux: FluxSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[GatewayClient]:
    # Watch requests renewed every second (from their last resourceVersion), so a test can
    # hold the renewed ones.
    monkeypatch.setattr(kubewatch, "WATCH_SECONDS", 1)
    settings = flux_gateway_settings(
        tmp_path, kubeconfig, remediation={"upgradeRetries": 0}, timeouts={"read": 0.5, "write": 20}
    )
    fast_polling(settings)
    # Polling effectively off: only the watch can notice a change within the test.
    settings.reconcile = ReconcileSettings(
        interval=600.0, resync=600.0, max_interval=600.0, lease_seconds=5.0, list_interval=0.3
    )
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


def _stall(kubeconfig: Path) -> None:
    """Edit the HelmRelease's values with the kubernetes client: every upgrade fails, the
    simulated helm-controller runs out of retries, the release is Stalled."""
    api = k8s_config.new_client_from_config(str(kubeconfig))
    try:
        k8s_client.CustomObjectsApi(api).patch_namespaced_custom_object(
            "helm.toolkit.fluxcd.io",
            "v2",
            "apps",
            "helmreleases",
            "web",
            {"spec": {"values": {"replicaCount": 1, "simulateFailure": True}}},
        )
    finally:
        api.close()


def _stalled(emulator: KubernetesEmulator) -> bool:
    hr = emulator.get(*HR) or {}
    conditions = {c["type"]: c["status"] for c in (hr.get("status") or {}).get("conditions", [])}
    return conditions.get("Stalled") == "True"


def _lists(emulator: KubernetesEmulator, path: str) -> int:
    return sum(
        1
        for r in emulator.requests
        if r.method == "GET" and r.path == path and "watch=true" not in r.query
    )


async def test_a_helmrelease_stalled_behind_the_gateways_back_is_noticed_by_the_watch(
    gw: GatewayClient,
    emulator: KubernetesEmulator,
    notification_sink: CallbackSink,
    kubeconfig: Path,
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    reconciler: Any = gw.app.state.services.reconciler
    batches = reconciler.stats.watch_batches

    _stall(kubeconfig)
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")
    assert _stalled(emulator)
    assert "values" in {d["change"] for d in record["drift"]["differences"]}, record
    assert reconciler.stats.watch_batches > batches
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "FAILED",
    )
    # Watched, not polled: the deployment's object was read on changes, not every interval.
    assert any(r.path == HELMRELEASES and "watch=true" in r.query for r in emulator.requests), (
        "no watch of HelmReleases"
    )


async def test_a_workload_deleted_is_noticed_through_the_watch_of_flux_owned_workloads(
    gw: GatewayClient, emulator: KubernetesEmulator, notification_sink: CallbackSink
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    workload = emulator.get("apps/v1", "Deployment", "web", "apps")
    assert workload is not None
    # helm-controller's owner labels map the workload to its HelmRelease.
    labels = workload["metadata"]["labels"]
    assert labels["helm.toolkit.fluxcd.io/name"] == "web", labels

    emulator.delete("apps/v1", "Deployment", "web", "apps")  # HelmRelease unchanged: Ready
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    assert record["status"] == "DEGRADED", record
    await notified(notification_sink, "DeploymentDriftDetected", deployment_id)


async def test_a_watch_expired_while_the_change_happened_relists_and_records_it(
    gw: GatewayClient,
    emulator: KubernetesEmulator,
    notification_sink: CallbackSink,
    kubeconfig: Path,
) -> None:
    deployment_id = await deploy(gw)
    await subscribe(gw, notification_sink)
    lists = _lists(emulator, HELMRELEASES)

    # Every renewed watch is held: the gateway sees nothing (polling is off).
    held = emulator.faults.hang(path=WATCHED, method="GET", seconds=30.0)
    await until(lambda: held.hits >= 10, 10.0)  # all ten collections' watches held
    _stall(kubeconfig)
    await until(lambda: _stalled(emulator), 15.0)
    await asyncio.sleep(0.5)
    before = await stored(gw, deployment_id)
    assert before["status"] == "DEPLOYED", before  # blind: the change is not seen yet

    # A compaction: the versions the held watches resume from are gone (410 Gone).
    store: Any = emulator.core.store
    with store.lock:
        store.oldest_rv = store.rv
    held.remove()
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")
    assert record["driftDetected"] is True
    # Relisted after the 410. Waited for, not read at once: the workloads' collections may
    # relist first and lead to the HelmRelease's read before its own collection relists.
    await until(lambda: _lists(emulator, HELMRELEASES) > lists, 10.0)
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "FAILED",
    )

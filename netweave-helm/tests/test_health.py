"""Live health, readiness and drift through the gateway's HTTP API, with real components: the
Helm adapter loaded by its entry point, the real Helm SDK, the Kubernetes API emulator driven
behind the gateway's back with the real ``kubernetes`` client, and a subscriber listening on
loopback. Each test checks what the cluster holds, not only the gateway's word."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from netweave.config import ReconcileSettings
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator
from netweave_helm.adapter import HelmAdapter

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
SETTLED = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
NS = "health"
RELEASE = "hw"
WORKLOAD = "hw-hello-world"


class Listener:
    """A subscriber on 127.0.0.1: answers the callback test GET and records POSTed events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(204)
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with listener._cond:
                    listener.events.append(body)
                    listener._cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e.get("notificationType") == event_type]

    async def wait_for(
        self, event_type: str, check: Any = None, within: float = 20.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for event in self.of_type(event_type):
                if check is None or check(event):
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"no {event_type} event; got {[e.get('notificationType') for e in self.events]}"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def helm_instance(kubeconfig: Path) -> dict[str, Any]:
    return {
        "name": "helm-local",
        "type": "helm",
        "default": True,
        "config": {
            "storage": {"kind": "local"},
            "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
            "timeouts": {"write": 20},
        },
    }


FAST = ReconcileSettings(interval=0.5, resync=30.0, lease_seconds=5.0, list_interval=0.5)


@pytest.fixture
async def gw(tmp_path: Path, k8s_kubeconfig: Path) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data", dms=[helm_instance(k8s_kubeconfig)], reconcile=FAST
    )
    settings.notifications.allow_private_callbacks = True
    settings.notifications.poll_interval = 0.05
    settings.notifications.settle_seconds = 0.0
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


@pytest.fixture
def kube(k8s_kubeconfig: Path) -> Iterator[Any]:
    api = k8s_config.new_client_from_config(str(k8s_kubeconfig))
    try:
        yield api
    finally:
        api.close()


async def subscribe(gw: GatewayClient, listener: Listener) -> None:
    response = await gw.post(
        "/o2dms/v1/subscriptions",
        json={
            "callbackUri": listener.url,
            "filter": {
                "eventTypes": ["DeploymentHealthChanged", "DeploymentDriftDetected"],
            },
        },
    )
    assert response.status_code == 201, response.text


async def deploy(gw: GatewayClient, charts_dir: Path, values: dict[str, Any] | None = None) -> str:
    archive = charts_dir / "hello-world-0.1.0.tgz"
    with archive.open("rb") as handle:
        response = await gw.post(
            PACKAGES,
            data={"name": "hello-world", "artifactVersion": "0.1.0"},
            files={"chart": (archive.name, handle, "application/gzip")},
        )
    assert response.status_code == 201, response.text
    body = {
        "name": RELEASE,
        "namespace": NS,
        "packageId": response.json()["packageId"],
        "values": values or {},
    }
    response = await gw.post(DEPLOYMENTS, json=body)
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    assert operation["state"] == "COMPLETED", operation
    return str(response.json()["deploymentId"])


async def status(gw: GatewayClient, deployment_id: str) -> dict[str, Any]:
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(gw: GatewayClient, deployment_id: str) -> dict[str, Any]:
    """The deployment as recorded (the list answers from the store: no read of the backend)."""
    response = await gw.get(DEPLOYMENTS, params={"namespace": NS})
    assert response.status_code == 200, response.text
    found = [d for d in response.json()["items"] if d["deploymentId"] == deployment_id]
    assert found, response.json()
    return found[0]


async def recorded_until(
    gw: GatewayClient, deployment_id: str, check: Any, within: float = 30.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    last: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = await stored(gw, deployment_id)
        if check(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"the record never matched: {last}")


async def test_status_reports_readiness_per_resource_by_the_kinds_rule(
    gw: GatewayClient, charts_dir: Path, k8s_emulator: KubernetesEmulator
) -> None:
    deployment_id = await deploy(gw, charts_dir)
    report = await status(gw, deployment_id)
    assert report["status"] == "DEPLOYED", report
    assert report["ready"] is True
    kinds = {r["kind"]: r for r in report["resources"]}
    assert kinds["Deployment"]["ready"] is True, kinds
    assert kinds["Deployment"]["apiVersion"] == "apps/v1"
    assert kinds["Service"]["ready"] is True  # a ready pod behind its selector
    assert kinds["ServiceAccount"]["ready"] is True  # present is all it says
    assert report["driftDetected"] is False
    live = k8s_emulator.get("apps/v1", "Deployment", WORKLOAD, NS)
    assert live is not None and live["status"]["availableReplicas"] == live["spec"]["replicas"]


async def test_a_workload_made_unready_behind_the_gateways_back_is_degraded_and_notified(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    kube: Any,
    listener: Listener,
) -> None:
    deployment_id = await deploy(gw, charts_dir)
    await subscribe(gw, listener)
    assert (await stored(gw, deployment_id))["status"] == "DEPLOYED"

    # Its pods stop being ready (the emulator's kubelet says so); nobody asks the gateway.
    k8s_emulator.set_behavior(f"{WORKLOAD}*", "unready", namespace=NS)
    core = k8s_client.CoreV1Api(kube)
    for pod in core.list_namespaced_pod(NS).items:
        core.delete_namespaced_pod(pod.metadata.name, NS)

    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEGRADED")
    assert (
        "ReplicasUnavailable" in record["statusMessage"] or "NoEndpoints" in record["statusMessage"]
    )
    event = await listener.wait_for(
        "DeploymentHealthChanged", lambda e: e["data"]["status"] == "DEGRADED"
    )
    assert event["deploymentId"] == deployment_id and event["id"]
    report = await status(gw, deployment_id)
    workload = next(r for r in report["resources"] if r["kind"] == "Deployment")
    assert workload["ready"] is False and workload["reason"] == "ReplicasUnavailable", workload
    # Not a change of configuration: no drift.
    assert report["driftDetected"] is False

    # Ready again behind its back: DEPLOYED again, notified.
    k8s_emulator.set_behavior(f"{WORKLOAD}*", "ready", namespace=NS)
    for pod in core.list_namespaced_pod(NS).items:
        core.delete_namespaced_pod(pod.metadata.name, NS)
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    await listener.wait_for("DeploymentHealthChanged", lambda e: e["data"]["status"] == "DEPLOYED")


async def test_a_deleted_deployment_object_is_drift_and_the_repair_recreates_it(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    kube: Any,
    listener: Listener,
) -> None:
    deployment_id = await deploy(gw, charts_dir)
    await subscribe(gw, listener)
    k8s_client.AppsV1Api(kube).delete_namespaced_deployment(WORKLOAD, NS)

    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    differences = record["drift"]["differences"]
    assert {
        "change": "missing",
        "kind": "Deployment",
        "name": WORKLOAD,
        "namespace": NS,
    }.items() <= differences[0].items(), differences
    assert record["drift"]["since"]
    assert record["status"] == "DEGRADED"
    event = await listener.wait_for("DeploymentDriftDetected")
    assert event["data"]["drift"]["differences"][0]["change"] == "missing"

    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    assert operation["operationType"] == "RECONCILE"
    assert operation["state"] == "COMPLETED", operation
    assert k8s_emulator.get("apps/v1", "Deployment", WORKLOAD, NS) is not None
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_the_release_storage_deleted_as_helm_uninstall_would_is_reflected_and_notified(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    kube: Any,
    listener: Listener,
) -> None:
    deployment_id = await deploy(gw, charts_dir)
    await subscribe(gw, listener)
    core = k8s_client.CoreV1Api(kube)
    secrets = core.list_namespaced_secret(NS, label_selector=f"owner=helm,name={RELEASE}").items
    assert secrets
    for secret in secrets:
        core.delete_namespaced_secret(secret.metadata.name, NS)

    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DELETED")
    assert record["driftDetected"] is True
    assert record["drift"]["differences"][0]["change"] == "uninstalled"
    await listener.wait_for("DeploymentHealthChanged", lambda e: e["data"]["status"] == "DELETED")
    await listener.wait_for("DeploymentDriftDetected")

    # Repair installs it again (Helm adopts the objects it left).
    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    assert operation["state"] == "COMPLETED", operation
    assert core.list_namespaced_secret(
        NS, label_selector=f"owner=helm,name={RELEASE},status=deployed"
    ).items
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_a_value_edited_with_kubectl_shows_in_diff_and_the_repair_restores_it(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    kube: Any,
) -> None:
    deployment_id = await deploy(gw, charts_dir, {"replicaCount": 2})
    diff = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")).json()
    assert diff["driftDetected"] is False, diff
    assert {r["state"] for r in diff["resources"]} == {"in-sync"}

    apps = k8s_client.AppsV1Api(kube)
    apps.patch_namespaced_deployment(WORKLOAD, NS, {"spec": {"replicas": 5}})

    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["driftDetected"] is True
    edited = next(r for r in diff["resources"] if r["kind"] == "Deployment")
    assert edited["state"] == "modified"
    assert "-  replicas: 2" in edited["diff"] and "+  replicas: 5" in edited["diff"], edited["diff"]
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    assert record["drift"]["differences"][0]["change"] == "modified"
    assert ".spec.replicas" in record["drift"]["differences"][0]["detail"]

    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    assert operation["state"] == "COMPLETED", operation
    live = k8s_emulator.get("apps/v1", "Deployment", WORKLOAD, NS)
    assert live is not None and live["spec"]["replicas"] == 2
    diff = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")).json()
    assert diff["driftDetected"] is False, diff


async def test_a_dry_run_update_shows_the_diff_it_would_apply(
    gw: GatewayClient, charts_dir: Path, k8s_emulator: KubernetesEmulator
) -> None:
    deployment_id = await deploy(gw, charts_dir, {"replicaCount": 1})
    response = await gw.patch(
        f"{DEPLOYMENTS}/{deployment_id}",
        params={"dryRun": "true"},
        json={"values": {"replicaCount": 3}},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    changed = [r for r in preview["diff"] if r["state"] != "in-sync"]
    assert [r["kind"] for r in changed] == ["Deployment"], changed
    assert "-  replicas: 1" in changed[0]["diff"] and "+  replicas: 3" in changed[0]["diff"]
    live = k8s_emulator.get("apps/v1", "Deployment", WORKLOAD, NS)
    assert live is not None and live["spec"]["replicas"] == 1  # nothing applied


async def _tracked_quietly(gw: GatewayClient, deployment_id: str) -> Any:
    """The reconciler, once it tracks ``deployment_id``, with that deployment's own first read
    (spread over the resync period) put past the test: only reported changes ask for reads."""
    reconciler = gw.app.state.services.reconciler
    deadline = asyncio.get_running_loop().time() + 10
    while deployment_id not in reconciler._tracked:
        assert asyncio.get_running_loop().time() < deadline, "never tracked"
        await asyncio.sleep(0.05)
    tracked = reconciler._tracked[deployment_id]
    tracked.due = tracked.due_unchanged = asyncio.get_running_loop().time() + 3600
    return reconciler


async def test_an_upgrade_is_not_read_again_for_the_changes_it_made_itself(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment_id = await deploy(gw, charts_dir)
    reconciler = await _tracked_quietly(gw, deployment_id)
    tracked = reconciler._tracked[deployment_id]
    loop = asyncio.get_running_loop()
    # The create's own reports: past their settle, and none arriving any more (on a loaded
    # machine the controllers' last writes of the create can trail it by more than a second).
    deadline = loop.time() + 20
    while True:
        batches = reconciler.stats.watch_batches
        await asyncio.sleep(1.0)
        quiet = batches == reconciler.stats.watch_batches and tracked.reported is None
        if quiet or loop.time() > deadline:
            break
    observations, covered = reconciler.stats.observations, reconciler.stats.covered

    # The operation's final read begins once the watch reported the upgrade's write of the
    # release: a report that arrives after that read began is read again by design (it may be
    # someone else's change), and on a loaded machine the watch can deliver that late.
    describe = HelmAdapter._describe

    async def describe_once_reported(self: HelmAdapter, *args: Any, **kwargs: Any) -> Any:
        # Reported, and then no new watch batch for 1 s: the upgrade writes several objects
        # (the new release Secret, the old one superseded), whose reports a loaded machine
        # delivers spread out; one arriving after the read began would be read again.
        quiet_since, batches = loop.time(), reconciler.stats.watch_batches
        for _ in range(1500):  # 15 s at most
            if batches != reconciler.stats.watch_batches:
                quiet_since, batches = loop.time(), reconciler.stats.watch_batches
            if tracked.reported is not None and loop.time() - quiet_since >= 1.0:
                break
            await asyncio.sleep(0.01)
        return await describe(self, *args, **kwargs)

    monkeypatch.setattr(HelmAdapter, "_describe", describe_once_reported)
    # The reconciler's read of a report waits CHANGE_SETTLE (0.5 s); a loaded machine can take
    # longer than that to record the operation's read, and the reconciler's read then comes
    # while the operation is active and is skipped (neither observed nor covered; a CI trial
    # failed so). Longer here, so the operation's recorded read is what decides.
    monkeypatch.setattr("netweave.reconcile.reconciler.CHANGE_SETTLE", 10.0)
    response = await gw.patch(f"{DEPLOYMENTS}/{deployment_id}", json={"values": {"unused": 1}})
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    assert operation["state"] == "COMPLETED", operation
    # The watch reported the release's new revision (a value no template uses: the objects
    # stay as they were, so no controller writes after the operation's read); that read,
    # recorded, saw it: no read of the reconciler follows.
    await asyncio.sleep(2.0)
    assert reconciler.stats.observations == observations
    assert reconciler.stats.covered > covered
    assert tracked.reported is None  # dropped: no read of it is pending either
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record
    assert k8s_emulator.get("v1", "Secret", "sh.helm.release.v1.hw.v2", NS) is not None


async def test_a_change_made_right_after_an_upgrade_completed_is_still_recorded(
    gw: GatewayClient, charts_dir: Path, kube: Any, listener: Listener
) -> None:
    deployment_id = await deploy(gw, charts_dir)
    reconciler = await _tracked_quietly(gw, deployment_id)
    await subscribe(gw, listener)

    response = await gw.patch(
        f"{DEPLOYMENTS}/{deployment_id}", json={"values": {"replicaCount": 2}}
    )
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    assert operation["state"] == "COMPLETED", operation
    # At once, behind the gateway's back, while the upgrade's own reports may still be
    # arriving: this one follows the operation's final read, so it is read and recorded.
    k8s_client.AppsV1Api(kube).delete_namespaced_deployment(WORKLOAD, NS)

    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    assert record["drift"]["differences"][0]["change"] == "missing", record
    assert record["status"] == "DEGRADED"
    await listener.wait_for("DeploymentDriftDetected")
    assert reconciler.stats.observations >= 1

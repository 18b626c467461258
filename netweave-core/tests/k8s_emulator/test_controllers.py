"""Default workload controllers, behaviours for failure paths, custom reconcilers."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from netweave.testing.k8s import (
    ANNOTATION_BEHAVIOR,
    ANNOTATION_READY_AFTER,
    ControllerContext,
    KubernetesEmulator,
    conditions,
)

from .conftest import flux_crd_paths, load_yaml_docs


def _workload(
    kind: str, name: str, replicas: int = 2, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": f"{name}:1"}]},
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def _job(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "job", "image": "busybox", "command": ["true"]}],
                }
            }
        },
    }


def _pods(core: client.CoreV1Api, selector: str) -> list[Any]:
    return sorted(
        core.list_namespaced_pod("default", label_selector=selector).items,
        key=lambda p: p.metadata.name,
    )


def test_deployment_becomes_ready_with_replicaset_and_pods(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment("default", _workload("Deployment", "web", 3))
    assert k8s_emulator.wait_idle()
    d = apps.read_namespaced_deployment("web", "default")
    assert (
        d.status.replicas,
        d.status.ready_replicas,
        d.status.available_replicas,
        d.status.updated_replicas,
    ) == (3, 3, 3, 3)
    assert d.status.observed_generation == 1
    conds = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert conds == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    rs = apps.list_namespaced_replica_set("default").items
    assert len(rs) == 1
    assert rs[0].metadata.owner_references[0].uid == d.metadata.uid
    pods = _pods(core, "app=web")
    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    assert all(p.metadata.owner_references[0].name == rs[0].metadata.name for p in pods)
    assert all(p.metadata.labels["pod-template-hash"] for p in pods)
    # A template change rolls out a new ReplicaSet; the old one is scaled to zero.
    apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "web:2"}]}}}},
    )
    assert k8s_emulator.wait_idle()
    d = apps.read_namespaced_deployment("web", "default")
    assert d.status.observed_generation == 2
    assert d.status.ready_replicas == 3
    sets = {
        r.metadata.name: r.spec.replicas for r in apps.list_namespaced_replica_set("default").items
    }
    assert sorted(sets.values()) == [0, 3]
    pods = _pods(core, "app=web")
    assert {p.spec.containers[0].image for p in pods} == {"web:2"}
    # Deleting the Deployment garbage-collects its ReplicaSets and Pods.
    apps.delete_namespaced_deployment("web", "default")
    assert k8s_emulator.wait_idle()
    assert apps.list_namespaced_replica_set("default").items == []
    assert _pods(core, "app=web") == []


def test_statefulset_daemonset_job_pod_pvc(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    apps, core, batch = client.AppsV1Api(kube), client.CoreV1Api(kube), client.BatchV1Api(kube)
    apps.create_namespaced_stateful_set("default", _workload("StatefulSet", "db", 2))
    apps.create_namespaced_daemon_set("default", _workload("DaemonSet", "agent"))
    batch.create_namespaced_job("default", _job("migrate"))
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "once"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]},
        },
    )
    core.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "2Gi"}},
            },
        },
    )
    core.create_namespaced_service(
        "default",
        {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
    )
    assert k8s_emulator.wait_idle()
    sts = apps.read_namespaced_stateful_set("db", "default")
    assert sts.status.ready_replicas == 2
    assert sts.status.current_revision == sts.status.update_revision
    assert [p.metadata.name for p in _pods(core, "app=db")] == ["db-0", "db-1"]
    ds = apps.read_namespaced_daemon_set("agent", "default")
    assert (ds.status.desired_number_scheduled, ds.status.number_ready) == (1, 1)
    job = batch.read_namespaced_job("migrate", "default")
    assert job.status.succeeded == 1
    assert {c.type for c in job.status.conditions} == {"Complete", "SuccessCriteriaMet"}
    assert core.read_namespaced_pod("once", "default").status.phase == "Succeeded"
    assert core.read_namespaced_persistent_volume_claim("data", "default").status.phase == "Bound"
    assert (
        core.read_namespaced_service("lb", "default").status.load_balancer.ingress[0].ip
        == "127.0.0.1"
    )


def test_behaviors_by_rule(k8s_emulator: KubernetesEmulator, kube: client.ApiClient) -> None:
    apps, core, batch = client.AppsV1Api(kube), client.CoreV1Api(kube), client.BatchV1Api(kube)
    k8s_emulator.set_behavior("broken*", "fail")
    k8s_emulator.set_behavior("slow", "unready", kind="Deployment")
    k8s_emulator.set_behavior("stuck", "hang")
    apps.create_namespaced_deployment("default", _workload("Deployment", "broken-web", 1))
    apps.create_namespaced_deployment("default", _workload("Deployment", "slow", 2))
    apps.create_namespaced_deployment("default", _workload("Deployment", "stuck", 1))
    batch.create_namespaced_job("default", _job("broken-job"))
    assert k8s_emulator.wait_idle()
    failed = apps.read_namespaced_deployment("broken-web", "default")
    progressing = next(c for c in failed.status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    pod = _pods(core, "app=broken-web")[0]
    assert pod.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    slow = apps.read_namespaced_deployment("slow", "default")
    assert not slow.status.ready_replicas
    assert slow.status.unavailable_replicas == 2
    assert all(p.status.phase == "Running" for p in _pods(core, "app=slow"))
    stuck = apps.read_namespaced_deployment("stuck", "default")
    assert stuck.status is None or stuck.status.observed_generation is None
    assert _pods(core, "app=stuck") == []
    job = batch.read_namespaced_job("broken-job", "default")
    assert job.status.failed == 1
    assert any(c.type == "Failed" and c.status == "True" for c in job.status.conditions)


def test_behavior_annotation_and_ready_after(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    apps = client.AppsV1Api(kube)
    apps.create_namespaced_deployment(
        "default", _workload("Deployment", "ann", 1, {ANNOTATION_BEHAVIOR: "unready"})
    )
    apps.create_namespaced_deployment(
        "default", _workload("Deployment", "later", 1, {ANNOTATION_READY_AFTER: "2"})
    )
    assert k8s_emulator.wait_idle()
    assert not apps.read_namespaced_deployment("ann", "default").status.ready_replicas
    assert not apps.read_namespaced_deployment("later", "default").status.ready_replicas
    deadline = time.monotonic() + 10
    ready = None
    while time.monotonic() < deadline:  # bounded poll
        ready = apps.read_namespaced_deployment("later", "default").status.ready_replicas
        if ready:
            break
        time.sleep(0.1)
    assert ready == 1


def test_without_default_controllers_nothing_becomes_ready(k8s_emulator_factory: Any) -> None:
    emu = k8s_emulator_factory(controllers=False)
    emu.create(_workload("Deployment", "idle", 1))
    assert emu.wait_idle()
    dep = emu.get("apps/v1", "Deployment", "idle", "default")
    assert "status" not in dep
    assert emu.list("v1", "Pod", "default") == []


def test_custom_reconciler_simulating_flux(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    for path in flux_crd_paths():
        k8s_emulator.install_crd(load_yaml_docs(path))
    calls: list[int] = []

    def helm_controller(ctx: ControllerContext, hr: dict[str, Any]) -> None:
        gen = hr["metadata"]["generation"]
        status = hr.get("status") or {}
        if status.get("observedGeneration") == gen:
            return
        calls.append(gen)
        history = list(status.get("history") or [])
        history.insert(
            0,
            {
                "chartName": "podinfo",
                "chartVersion": "6.0.0",
                "version": len(history) + 1,
                "status": "deployed",
                "digest": "sha256:0",
                "firstDeployed": "2026-01-01T00:00:00Z",
                "lastDeployed": "2026-01-01T00:00:00Z",
                "name": hr["metadata"]["name"],
                "namespace": "default",
                "configDigest": "sha256:1",
            },
        )
        ctx.set_status(
            hr,
            {
                "observedGeneration": gen,
                "history": history,
                "conditions": conditions(
                    status,
                    [
                        (
                            "Ready",
                            "True",
                            "UpgradeSucceeded" if history[1:] else "InstallSucceeded",
                            "ok",
                        )
                    ],
                ),
            },
        )
        # A real helm-controller also creates what the chart contains.
        ctx.create(
            dict(
                _workload("Deployment", f"{hr['metadata']['name']}-podinfo", 1),
                metadata={"name": f"{hr['metadata']['name']}-podinfo", "namespace": "default"},
            )
        )

    k8s_emulator.register_controller("HelmRelease", helm_controller, group="helm.toolkit.fluxcd.io")
    crs = client.CustomObjectsApi(kube)
    hr = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo"},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "r"}}
            },
        },
    }
    crs.create_namespaced_custom_object(
        "helm.toolkit.fluxcd.io", "v2", "default", "helmreleases", hr
    )
    assert k8s_emulator.wait_idle()
    got = crs.get_namespaced_custom_object(
        "helm.toolkit.fluxcd.io", "v2", "default", "helmreleases", "podinfo"
    )
    assert got["status"]["conditions"][0]["reason"] == "InstallSucceeded"
    assert len(got["status"]["history"]) == 1
    assert (
        client.AppsV1Api(kube)
        .read_namespaced_deployment("podinfo-podinfo", "default")
        .status.ready_replicas
        == 1
    )
    crs.patch_namespaced_custom_object(
        "helm.toolkit.fluxcd.io",
        "v2",
        "default",
        "helmreleases",
        "podinfo",
        {"spec": {"values": {"a": 1}}},
    )
    assert k8s_emulator.wait_idle()
    got = crs.get_namespaced_custom_object(
        "helm.toolkit.fluxcd.io", "v2", "default", "helmreleases", "podinfo"
    )
    assert got["status"]["observedGeneration"] == 2
    assert got["status"]["conditions"][0]["reason"] == "UpgradeSucceeded"
    assert [h["version"] for h in got["status"]["history"]] == [2, 1]
    assert calls == [1, 2]  # status writes do not retrigger work: reconciles are idempotent


def test_replacing_a_default_reconciler_and_errors_are_retried(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    attempts: list[str] = []

    def flaky(ctx: ControllerContext, cm: dict[str, Any]) -> float | None:
        attempts.append(cm["metadata"]["name"])
        if len(attempts) < 3:
            raise RuntimeError("transient")
        return None

    k8s_emulator.register_controller("ConfigMap", flaky)
    client.CoreV1Api(kube).create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    deadline = time.monotonic() + 5
    while len(attempts) < 3 and time.monotonic() < deadline:  # bounded wait for backoff retries
        time.sleep(0.05)
    assert attempts == ["c", "c", "c"]
    assert len(k8s_emulator.controllers.errors) == 2
    assert "transient" in k8s_emulator.controllers.errors[0]

    def manual(ctx: ControllerContext, dep: dict[str, Any]) -> None:
        ctx.set_status(dep, {"observedGeneration": dep["metadata"]["generation"], "replicas": 7})

    k8s_emulator.register_controller("Deployment", manual, group="apps")
    client.AppsV1Api(kube).create_namespaced_deployment("default", _workload("Deployment", "m", 1))
    assert k8s_emulator.wait_idle()
    assert client.AppsV1Api(kube).read_namespaced_deployment("m", "default").status.replicas == 7
    assert client.AppsV1Api(kube).list_namespaced_replica_set("default").items == []


def test_requeue_after(k8s_emulator: KubernetesEmulator, kube: client.ApiClient) -> None:
    seen: list[float] = []

    def ticking(ctx: ControllerContext, cm: dict[str, Any]) -> float | None:
        seen.append(time.monotonic())
        return 0.1 if len(seen) < 3 else None

    k8s_emulator.register_controller("ConfigMap", ticking)
    client.CoreV1Api(kube).create_namespaced_config_map("default", {"metadata": {"name": "t"}})
    deadline = time.monotonic() + 5
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(seen) == 3
    assert seen[2] - seen[1] >= 0.09


def test_controllers_record_events(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    k8s_emulator.set_behavior("crashy*", "fail")
    apps.create_namespaced_deployment("default", _workload("Deployment", "crashy", 1))
    assert k8s_emulator.wait_idle()
    events = core.list_namespaced_event("default").items
    by_reason = {(e.involved_object.kind, e.reason) for e in events}
    assert ("Deployment", "ScalingReplicaSet") in by_reason
    assert ("Pod", "Started") in by_reason
    warnings = [e for e in events if e.type == "Warning"]
    assert [w.reason for w in warnings] == ["BackOff"]
    assert "Back-off restarting failed container main" in warnings[0].message


def test_objects_handed_out_are_copies(k8s_emulator: KubernetesEmulator) -> None:
    k8s_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"},
            "data": {"a": "1"},
        }
    )
    got = k8s_emulator.get("v1", "ConfigMap", "c", "default")
    got["data"]["a"] = "changed"
    k8s_emulator.list("v1", "ConfigMap", "default")[0]["data"]["a"] = "changed too"

    def sloppy(ctx: ControllerContext, cm: dict[str, Any]) -> None:
        cm["data"]["a"] = "mutated in place, never written"

    k8s_emulator.register_controller("ConfigMap", sloppy)
    assert k8s_emulator.wait_idle()
    stored = k8s_emulator.get("v1", "ConfigMap", "c", "default")
    assert stored["data"] == {"a": "1"}

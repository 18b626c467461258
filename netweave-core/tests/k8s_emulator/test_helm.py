"""The real Helm v4 SDK (helm-python-sdk) against the emulator.

Needs HOME pointing at a throwaway directory at process start (see conftest).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as hp
import pytest
import yaml
from netweave.testing.k8s import KubernetesEmulator

from .conftest import shared_file

HelmFactory = Callable[..., Any]

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
"""

WIDGET = """apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  size: {{ .Values.widgetSize | default 1 }}
"""

PRE_INSTALL_JOB = """apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: busybox
          command: ["sh", "-c", "echo migrating"]
"""

POST_INSTALL_CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-installed
  annotations:
    "helm.sh/hook": post-install
data:
  revision: "{{ .Release.Revision }}"
"""

VALUES_CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | default "hello" | quote }}
"""


def _chart(tmp: Path, name: str = "demo", *, crds: bool = False, hooks: bool = False) -> Path:
    hp.Chart.create(name, str(tmp)).close()
    root = tmp / name
    (root / "templates" / "settings.yaml").write_text(VALUES_CM)
    if crds:
        (root / "crds").mkdir()
        (root / "crds" / "widgets.yaml").write_text(CRD)
        (root / "templates" / "widget.yaml").write_text(WIDGET)
    if hooks:
        (root / "templates" / "migrate-job.yaml").write_text(PRE_INSTALL_JOB)
        (root / "templates" / "installed-hook.yaml").write_text(POST_INSTALL_CM)
    return root


@pytest.fixture
def helm(helm_home: Path, k8s_emulator: KubernetesEmulator) -> Iterator[HelmFactory]:
    configs: list[Any] = []

    def factory(**kw: Any) -> Any:
        cfg = k8s_emulator.helm_config(**kw)
        configs.append(cfg)
        return cfg

    yield factory
    for cfg in configs:
        cfg.close()


def _release_records(
    emu: KubernetesEmulator, driver: str, name: str, ns: str = "default"
) -> list[dict[str, Any]]:
    kind = "Secret" if driver == "secret" else "ConfigMap"
    items = emu.list("v1", kind, ns, label_selector=f"owner=helm,name={name}")
    return sorted(items, key=lambda o: int(o["metadata"]["labels"]["version"]))


def _decode_release(record: dict[str, Any], driver: str) -> dict[str, Any]:
    raw = record["data"]["release"]
    if driver == "secret":
        raw = base64.b64decode(raw).decode()
    data: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(raw)))
    return data


@pytest.mark.parametrize("driver", ["secret", "configmap"])
def test_full_lifecycle(
    driver: str, helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    chart = _chart(tmp_path)
    cfg = helm(storage_driver=driver)
    rel = cfg.install(str(chart), "web", {"greeting": "hi"}, wait="watcher", timeout=30)
    assert rel["status"] == "deployed"
    assert rel["revision"] == 1
    dep = k8s_emulator.get("apps/v1", "Deployment", "web-demo", "default")
    assert dep is not None
    assert dep["status"]["readyReplicas"] == 1
    assert k8s_emulator.get("v1", "ConfigMap", "web-settings", "default")["data"] == {
        "greeting": "hi"
    }
    records = _release_records(k8s_emulator, driver, "web")
    assert [r["metadata"]["labels"]["status"] for r in records] == ["deployed"]
    assert _decode_release(records[0], driver)["name"] == "web"

    assert cfg.status("web")["status"] == "deployed"
    assert cfg.get_values("web") == {"greeting": "hi"}
    assert [r["name"] for r in cfg.list()] == ["web"]

    up = cfg.upgrade(
        str(chart), "web", {"greeting": "hey", "replicaCount": 3}, wait="watcher", timeout=30
    )
    assert up["revision"] == 2
    dep = k8s_emulator.get("apps/v1", "Deployment", "web-demo", "default")
    assert dep["spec"]["replicas"] == 3
    assert dep["status"]["readyReplicas"] == 3
    assert k8s_emulator.get("v1", "ConfigMap", "web-settings", "default")["data"] == {
        "greeting": "hey"
    }

    tested = cfg.test("web", logs=True, timeout=30)
    assert "web-demo-test-connection" in tested["logs"]
    assert "running: wget web-demo:80" in tested["logs"]

    cfg.rollback("web", version=1, wait="watcher", timeout=30)
    assert k8s_emulator.get("v1", "ConfigMap", "web-settings", "default")["data"] == {
        "greeting": "hi"
    }
    assert k8s_emulator.get("apps/v1", "Deployment", "web-demo", "default")["spec"]["replicas"] == 1
    history = [(h["revision"], h["status"]) for h in cfg.history("web")]
    assert history == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert cfg.get_values("web", revision=2) == {"greeting": "hey", "replicaCount": 3}

    cfg.uninstall("web", wait="watcher", timeout=30)
    assert k8s_emulator.get("apps/v1", "Deployment", "web-demo", "default") is None
    assert k8s_emulator.get("v1", "ConfigMap", "web-settings", "default") is None
    assert _release_records(k8s_emulator, driver, "web") == []
    assert k8s_emulator.wait_idle()
    # Deployment pods are garbage-collected; the test hook pod stays (no delete policy).
    pods = [p["metadata"]["name"] for p in k8s_emulator.list("v1", "Pod", "default")]
    assert pods == ["web-demo-test-connection"]
    assert cfg.list(all_states=True) == []
    with pytest.raises(hp.HelmNotFoundError):
        cfg.uninstall("web")


def test_protobuf_storage_and_ssa_requests(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    cfg = helm()
    cfg.install(str(_chart(tmp_path)), "p", wait="watcher", timeout=30)
    posts = [r for r in k8s_emulator.requests if r.method == "POST" and r.path.endswith("/secrets")]
    assert posts
    assert all(r.content_type == "application/vnd.kubernetes.protobuf" for r in posts)
    applies = [
        r
        for r in k8s_emulator.requests
        if r.method == "PATCH" and r.content_type == "application/apply-patch+yaml"
    ]
    assert applies
    assert all(r.status == 201 for r in applies)


def test_install_again_and_unknown_upgrade_fail(helm: HelmFactory, tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    cfg = helm()
    cfg.install(str(chart), "dup", timeout=30)
    with pytest.raises(hp.HelmError, match="cannot reuse a name that is still in use"):
        cfg.install(str(chart), "dup", timeout=30)
    with pytest.raises(hp.HelmError, match="has no deployed releases"):
        cfg.upgrade(str(chart), "nope", timeout=30)


def test_create_namespace_and_list_all_namespaces(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    chart = _chart(tmp_path)
    cfg = helm()
    cfg.install(
        str(chart), "a", namespace="team-a", create_namespace=True, wait="watcher", timeout=30
    )
    cfg.install(str(chart), "b", wait="watcher", timeout=30)
    ns = k8s_emulator.get("v1", "Namespace", "team-a")
    assert ns is not None
    assert ns["status"]["phase"] == "Active"
    assert k8s_emulator.get("apps/v1", "Deployment", "a-demo", "team-a") is not None
    assert sorted((r["name"], r["namespace"]) for r in cfg.list(all_namespaces=True)) == [
        ("a", "team-a"),
        ("b", "default"),
    ]
    without = helm(namespace="missing")
    with pytest.raises(hp.HelmError):
        without.install(str(chart), "c", timeout=30)


def test_crds_directory_and_custom_resource(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    cfg = helm()
    cfg.install(
        str(_chart(tmp_path, crds=True)), "w", {"widgetSize": 3}, wait="watcher", timeout=30
    )
    crd = k8s_emulator.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"
    )
    assert {c["type"] for c in crd["status"]["conditions"]} == {"NamesAccepted", "Established"}
    widget = k8s_emulator.get("example.com/v1", "Widget", "w-widget", "default")
    assert widget["spec"] == {"size": 3}
    cfg.uninstall("w", timeout=30)
    assert k8s_emulator.get("example.com/v1", "Widget", "w-widget", "default") is None
    # Helm never deletes CRDs from crds/.
    assert (
        k8s_emulator.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"
        )
        is not None
    )


def test_invalid_custom_resource_fails_the_install(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    cfg = helm()
    with pytest.raises(hp.HelmError):
        cfg.install(str(_chart(tmp_path, crds=True)), "bad", {"widgetSize": '"huge"'}, timeout=30)
    assert k8s_emulator.get("example.com/v1", "Widget", "bad-widget", "default") is None


def test_hooks_run_and_are_cleaned_up(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    cfg = helm()
    chart = _chart(tmp_path, hooks=True)
    cfg.install(str(chart), "h", wait="watcher", timeout=30)
    # hook-succeeded: the Job ran to completion and was deleted afterwards.
    assert k8s_emulator.get("batch/v1", "Job", "h-migrate", "default") is None
    # Helm 4 creates hooks by server-side apply and waits with a watch-list request.
    jobs = [
        r
        for r in k8s_emulator.requests
        if r.method == "PATCH" and r.path.endswith("/jobs/h-migrate")
    ]
    assert len(jobs) == 1
    watches = [r for r in k8s_emulator.requests if r.watch and r.path.endswith("/jobs")]
    assert watches
    assert watches[0].params["sendInitialEvents"] == ["true"]
    assert k8s_emulator.get("v1", "ConfigMap", "h-installed", "default")["data"] == {
        "revision": "1"
    }
    hooks = cfg.get_all("h")["hooks"]
    assert {h["name"] for h in hooks} >= {"h-migrate", "h-installed"}
    cfg.upgrade(str(chart), "h", wait="watcher", timeout=30)
    jobs = [
        r
        for r in k8s_emulator.requests
        if r.method == "PATCH" and r.path.endswith("/jobs/h-migrate")
    ]
    assert len(jobs) == 2  # pre-upgrade ran again


def test_failing_workload_fails_install_with_wait(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    k8s_emulator.set_behavior("bad-demo", "unready", kind="Deployment")
    cfg = helm()
    with pytest.raises(hp.HelmError, match=r"not ready|context deadline|timed out"):
        cfg.install(str(_chart(tmp_path)), "bad", wait="watcher", timeout=2)
    assert cfg.status("bad")["status"] == "failed"


def test_failing_helm_test(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    k8s_emulator.set_behavior("*-test-connection", "fail", kind="Pod")
    cfg = helm()
    cfg.install(str(_chart(tmp_path)), "t", wait="watcher", timeout=30)
    with pytest.raises(hp.HelmError):
        cfg.test("t", timeout=10)


def test_legacy_wait_and_dry_run_server(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    chart = _chart(tmp_path)
    cfg = helm()
    dry = cfg.install(str(chart), "d", dry_run="server", timeout=30)
    assert dry["status"] == "pending-install"
    assert k8s_emulator.get("apps/v1", "Deployment", "d-demo", "default") is None
    assert cfg.list(all_states=True) == []
    rel = cfg.install(str(chart), "d", wait="legacy", timeout=30)
    assert rel["status"] == "deployed"
    up = cfg.upgrade(str(chart), "d", {"replicaCount": 2}, wait="legacy", timeout=30)
    assert up["status"] == "deployed"


def test_keep_history_and_max_history(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    chart = _chart(tmp_path)
    cfg = helm()
    cfg.install(str(chart), "k", timeout=30)
    for i in range(4):
        cfg.upgrade(str(chart), "k", {"greeting": str(i)}, max_history=2, timeout=30)
    assert [h["revision"] for h in cfg.history("k")] == [4, 5]
    cfg.uninstall("k", keep_history=True, timeout=30)
    records = _release_records(k8s_emulator, "secret", "k")
    assert records[-1]["metadata"]["labels"]["status"] == "uninstalled"


def test_shared_hello_world_chart(helm: HelmFactory, k8s_emulator: KubernetesEmulator) -> None:
    tgz = shared_file("charts", "hello-world-0.1.0.tgz")
    cfg = helm()
    chart = hp.Chart.load_archive(tgz.read_bytes())
    try:
        rel = cfg.install(chart, "hello", wait="watcher", timeout=30)
    finally:
        chart.close()
    assert rel["status"] == "deployed"
    kinds = {d["kind"] for d in yaml.safe_load_all(rel["manifest"]) if d}
    for doc in yaml.safe_load_all(rel["manifest"]):
        if doc:
            api, kind, name = doc["apiVersion"], doc["kind"], doc["metadata"]["name"]
            assert k8s_emulator.get(api, kind, name, "default") is not None, (kind, name)
    assert "Deployment" in kinds
    cfg.uninstall("hello", wait="watcher", timeout=30)


def test_wait_watches_until_ready(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    # Readiness arrives later, so Helm's watcher must follow watch events to see it.
    k8s_emulator.set_behavior("late-demo*", "ready", ready_after=1.5)
    cfg = helm()
    rel = cfg.install(str(_chart(tmp_path)), "late", wait="watcher", timeout=30)
    assert rel["status"] == "deployed"
    assert (
        k8s_emulator.get("apps/v1", "Deployment", "late-demo", "default")["status"]["readyReplicas"]
        == 1
    )
    assert any(r.watch for r in k8s_emulator.requests)


def test_helm_owns_fields_and_conflicts_with_other_managers(
    helm: HelmFactory, k8s_emulator: KubernetesEmulator, kube: Any, tmp_path: Path
) -> None:
    from kubernetes import client

    chart = _chart(tmp_path)
    cfg = helm()
    cfg.install(str(chart), "own", wait="watcher", timeout=30)
    dep = k8s_emulator.get("apps/v1", "Deployment", "own-demo", "default")
    managers = {(e["manager"], e["operation"]) for e in dep["metadata"]["managedFields"]}
    # Helm's field manager is the process name: "python", "python3", ...
    assert any(op == "Apply" and m.startswith("python") for m, op in managers)
    # Someone scales the Deployment by hand (like `kubectl scale`)...
    client.AppsV1Api(kube).patch_namespaced_deployment_scale(
        "own-demo", "default", {"spec": {"replicas": 4}}, field_manager="kubectl"
    )
    # ...so Helm's next apply of spec.replicas conflicts, as on a real cluster (force=false).
    with pytest.raises(hp.HelmError, match="conflict"):
        cfg.upgrade(str(chart), "own", {"replicaCount": 2}, timeout=30)
    assert k8s_emulator.get("apps/v1", "Deployment", "own-demo", "default")["spec"]["replicas"] == 4

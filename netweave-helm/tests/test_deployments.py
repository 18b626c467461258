"""Releases against the project's Kubernetes API emulator, with the real Helm SDK."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from conftest import AdapterFactory, upload_of
from netweave.adapters import DeploymentChange, DeploymentSpec, OperationContext, PackageInfo
from netweave.errors import (
    AlreadyExists,
    BackendUnavailable,
    ClusterNotConfigured,
    InvalidInput,
    NotFound,
)
from netweave.models import DeploymentStatus, LogOptions
from netweave.testing.k8s import ANNOTATION_BEHAVIOR, ANNOTATION_LOGS, KubernetesEmulator
from netweave_helm.adapter import OP_LABEL, HelmAdapter, key_label

_ops = iter(range(1, 1_000_000))


def ctx(key: str | None = None, attempt: int = 1) -> OperationContext:
    n = next(_ops)
    return OperationContext(
        operation_id=f"op-{n}", idempotency_key=key or f"key-{n}", attempt=attempt
    )


def spec(
    package: PackageInfo, name: str = "rel", namespace: str = "team-a", **values: Any
) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}", name=name, namespace=namespace, package=package, values=values
    )


@pytest.fixture
async def adapter(adapter_factory: AdapterFactory, k8s_kubeconfig: Path) -> HelmAdapter:
    return await adapter_factory({"cluster": {"kubeconfig": str(k8s_kubeconfig)}})


@pytest.fixture
async def app_chart(adapter: HelmAdapter, tmp_path: Path) -> PackageInfo:
    archive = build_chart(
        tmp_path / "src",
        "app",
        "1.0.0",
        templates={"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT},
    )
    return await adapter.upload_package(upload_of(archive))


def _deployment(k8s: KubernetesEmulator, name: str, namespace: str = "team-a") -> dict[str, Any]:
    obj = k8s.get("apps/v1", "Deployment", f"{name}-app", namespace)
    assert obj is not None
    return obj


async def test_install_upgrade_scale_rollback_history_uninstall(
    adapter: HelmAdapter, app_chart: PackageInfo, k8s_emulator: KubernetesEmulator
) -> None:
    created = await adapter.create_deployment(spec(app_chart, greeting="hi", tag="1"), ctx())
    assert created.status is DeploymentStatus.DEPLOYED
    assert created.backend_ref == "team-a/rel"
    assert created.revision == 1
    assert created.values == {"greeting": "hi", "tag": "1"}
    assert {(r.kind, r.name) for r in created.resources} == {
        ("ConfigMap", "rel-cfg"),
        ("Deployment", "rel-app"),
    }
    # The namespace was created on request, the objects are in the cluster.
    assert k8s_emulator.get("v1", "Namespace", "team-a") is not None
    cm = k8s_emulator.get("v1", "ConfigMap", "rel-cfg", "team-a")
    assert cm is not None and cm["data"]["greeting"] == "hi"

    merged = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"greeting": "hello"}), ctx()
    )
    assert merged.revision == 2
    assert merged.values == {"greeting": "hello", "tag": "1"}

    replaced = await adapter.update_deployment(
        created.backend_ref,
        DeploymentChange(values={"greeting": "only"}, values_mode="replace"),
        ctx(),
    )
    assert replaced.values == {"greeting": "only"}
    assert _deployment(k8s_emulator, "rel")["spec"]["replicas"] == 1  # chart default again

    scaled = await adapter.scale_deployment(created.backend_ref, 4, ctx())
    assert scaled.revision == 4
    assert scaled.values == {"greeting": "only", "replicaCount": 4}
    assert _deployment(k8s_emulator, "rel")["spec"]["replicas"] == 4

    previous = await adapter.rollback_deployment(created.backend_ref, 0, ctx())
    assert previous.revision == 5
    assert previous.values == {"greeting": "only"}
    assert _deployment(k8s_emulator, "rel")["spec"]["replicas"] == 1

    first = await adapter.rollback_deployment(created.backend_ref, 1, ctx())
    assert first.revision == 6
    assert first.values == {"greeting": "hi", "tag": "1"}
    cm = k8s_emulator.get("v1", "ConfigMap", "rel-cfg", "team-a")
    assert cm is not None and cm["data"]["greeting"] == "hi"

    with pytest.raises(InvalidInput) as caught:
        await adapter.rollback_deployment(created.backend_ref, 42, ctx())
    assert caught.value.details["field"] == "revision"

    history = await adapter.get_history(created.backend_ref)
    assert [h.revision for h in history] == [1, 2, 3, 4, 5, 6]
    assert [h.status for h in history] == ["SUPERSEDED"] * 5 + ["DEPLOYED"]
    assert history[5].description == "Rollback to 1"
    assert history[3].values == {"greeting": "only", "replicaCount": 4}
    assert all(h.package_version == "1.0.0" for h in history)

    await adapter.delete_deployment(created.backend_ref, ctx())
    with pytest.raises(NotFound):
        await adapter.get_deployment(created.backend_ref)
    assert k8s_emulator.get("v1", "ConfigMap", "rel-cfg", "team-a") is None
    # Deleting again (a retried operation) is not an error.
    await adapter.delete_deployment(created.backend_ref, ctx())


async def test_health_reports_storage_and_a_reachable_cluster(
    adapter: HelmAdapter, k8s_kubeconfig: Path
) -> None:
    health = await adapter.health()
    assert health.healthy
    assert health.details["storage"] == "local"
    assert health.details["cluster"] == f"kubeconfig {k8s_kubeconfig}"
    assert health.details["clusterReachable"] is True


async def test_rollback_of_the_first_revision_says_there_is_no_previous(
    adapter: HelmAdapter, app_chart: PackageInfo
) -> None:
    created = await adapter.create_deployment(spec(app_chart), ctx())
    with pytest.raises(InvalidInput) as caught:
        await adapter.rollback_deployment(created.backend_ref, 0, ctx())
    assert "no previous revision" in caught.value.message


async def test_upgrade_to_a_new_package_version(
    adapter: HelmAdapter, app_chart: PackageInfo, tmp_path: Path
) -> None:
    created = await adapter.create_deployment(spec(app_chart, greeting="v1"), ctx())
    newer = await adapter.upload_package(
        upload_of(
            build_chart(
                tmp_path / "v2",
                "app",
                "1.1.0",
                templates={"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT},
            )
        )
    )
    upgraded = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(package=newer), ctx()
    )
    assert upgraded.package_version == "1.1.0"
    assert upgraded.values == {"greeting": "v1"}  # merge keeps the values


async def test_retried_create_of_the_same_operation_is_not_an_error(
    adapter: HelmAdapter, app_chart: PackageInfo
) -> None:
    first = await adapter.create_deployment(spec(app_chart), ctx("create-1"))
    assert first.extensions["labels"][OP_LABEL] == key_label("create-1")

    retried = await adapter.create_deployment(spec(app_chart), ctx("create-1", attempt=2))
    assert retried.status is DeploymentStatus.DEPLOYED
    assert retried.revision == 1

    with pytest.raises(AlreadyExists) as caught:
        await adapter.create_deployment(spec(app_chart), ctx("another-operation"))
    assert caught.value.status == 409


async def test_retried_upgrade_is_not_run_twice(
    adapter: HelmAdapter, app_chart: PackageInfo
) -> None:
    created = await adapter.create_deployment(spec(app_chart), ctx())
    change = DeploymentChange(values={"greeting": "once"})
    done = await adapter.update_deployment(created.backend_ref, change, ctx("upgrade-1"))
    again = await adapter.update_deployment(
        created.backend_ref, change, ctx("upgrade-1", attempt=2)
    )
    assert done.revision == again.revision == 2


async def test_failing_hook_reports_failed_with_helms_message(
    adapter: HelmAdapter, tmp_path: Path
) -> None:
    hook = f"""apiVersion: batch/v1
kind: Job
metadata:
  name: {{{{ .Release.Name }}}}-migrate
  annotations:
    helm.sh/hook: pre-install
    {ANNOTATION_BEHAVIOR}: fail
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: example/migrate:1
"""
    archive = build_chart(
        tmp_path / "src",
        "hooked",
        "1.0.0",
        templates={"configmap.yaml": CONFIGMAP, "hook.yaml": hook},
    )
    package = await adapter.upload_package(upload_of(archive))
    failed = await adapter.create_deployment(spec(package, name="hooked"), ctx())
    assert failed.status is DeploymentStatus.FAILED
    assert failed.backend_status == "failed"
    assert failed.message is not None and "pre-install" in failed.message
    status = await adapter.get_deployment(failed.backend_ref)
    assert status.status is DeploymentStatus.FAILED


async def test_values_schema_rejects_values_before_anything_changes(
    adapter: HelmAdapter, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    schema = {
        "type": "object",
        "properties": {"replicaCount": {"type": "integer", "minimum": 1}},
    }
    archive = build_chart(
        tmp_path / "src",
        "strict",
        "1.0.0",
        schema=schema,
        templates={"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT},
    )
    package = await adapter.upload_package(upload_of(archive))
    with pytest.raises(InvalidInput) as caught:
        await adapter.create_deployment(spec(package, name="strict", replicaCount="three"), ctx())
    assert "replicaCount" in caught.value.message
    with pytest.raises(InvalidInput):
        await adapter.preview_deployment(spec(package, name="strict", replicaCount=0))
    with pytest.raises(NotFound):
        await adapter.get_deployment("team-a/strict")
    assert k8s_emulator.get("v1", "ConfigMap", "strict-cfg", "team-a") is None


async def test_preview_renders_and_changes_nothing(
    adapter: HelmAdapter, app_chart: PackageInfo, k8s_emulator: KubernetesEmulator
) -> None:
    preview = await adapter.preview_deployment(spec(app_chart, name="pv", replicaCount=3))
    assert set(preview.manifests) == {
        "app/templates/configmap.yaml",
        "app/templates/deployment.yaml",
    }
    assert "replicas: 3" in preview.manifests["app/templates/deployment.yaml"]
    assert k8s_emulator.get("v1", "ConfigMap", "pv-cfg", "team-a") is None
    with pytest.raises(NotFound):
        await adapter.get_deployment("team-a/pv")

    created = await adapter.create_deployment(spec(app_chart, name="pv"), ctx())
    upgrade = await adapter.preview_deployment(
        spec(app_chart, name="pv"), DeploymentChange(values={"greeting": "preview"})
    )
    assert "preview" in upgrade.manifests["app/templates/configmap.yaml"]
    assert upgrade.extensions["revision"] == 2
    after = await adapter.get_deployment(created.backend_ref)
    assert after.revision == 1
    cm = k8s_emulator.get("v1", "ConfigMap", "pv-cfg", "team-a")
    assert cm is not None and cm["data"]["greeting"] == "hello"


async def test_logs_of_the_release_pods(
    adapter: HelmAdapter, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    logged = DEPLOYMENT.replace(
        "  template:\n    metadata:\n",
        f"  template:\n    metadata:\n      annotations:\n        {ANNOTATION_LOGS}: |-\n"
        "          line one\n          line two\n          line three\n",
    ).replace(
        '          image: "example/app:{{ .Values.tag }}"\n',
        '          image: "example/app:{{ .Values.tag }}"\n        - name: sidecar\n'
        "          image: example/sidecar:1\n",
    )
    archive = build_chart(
        tmp_path / "src", "logged", "1.0.0", templates={"deployment.yaml": logged}
    )
    package = await adapter.upload_package(upload_of(archive))
    created = await adapter.create_deployment(spec(package, name="lg"), ctx())
    assert k8s_emulator.wait_idle()

    lines = [
        line async for line in adapter.stream_logs(created.backend_ref, LogOptions(container="app"))
    ]
    assert [line.split("] ", 1)[-1] for line in lines] == ["line one", "line two", "line three"]

    tail = [
        line
        async for line in adapter.stream_logs(
            created.backend_ref, LogOptions(container="sidecar", tail_lines=1)
        )
    ]
    assert tail == ["line three"]

    both = [line async for line in adapter.stream_logs(created.backend_ref, LogOptions())]
    assert len(both) == 6
    assert {line.split("]", 1)[0].rsplit("/", 1)[1] for line in both} == {"app", "sidecar"}

    with pytest.raises(NotFound):
        async for _ in adapter.stream_logs(created.backend_ref, LogOptions(container="nope")):
            pass


async def test_release_name_longer_than_53_is_refused(
    adapter: HelmAdapter, app_chart: PackageInfo
) -> None:
    with pytest.raises(InvalidInput):
        await adapter.create_deployment(spec(app_chart, name="r" * 54), ctx())
    ok = await adapter.create_deployment(spec(app_chart, name="r" * 53), ctx())
    assert ok.status is DeploymentStatus.DEPLOYED


async def test_configmap_storage_driver(
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Path,
) -> None:
    adapter = await adapter_factory(
        {"cluster": {"kubeconfig": str(k8s_kubeconfig), "storageDriver": "configmap"}}
    )
    package = await adapter.upload_package(upload_of(build_chart(tmp_path / "s", "cmd", "1.0.0")))
    await adapter.create_deployment(spec(package, name="cmd"), ctx())
    stored = k8s_emulator.list("v1", "ConfigMap", "team-a", label_selector="owner=helm,name=cmd")
    assert len(stored) == 1
    assert not k8s_emulator.list("v1", "Secret", "team-a", label_selector="owner=helm")


async def test_wait_strategy_watcher_times_out_on_unready_workloads(
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Path,
) -> None:
    adapter = await adapter_factory(
        {"cluster": {"kubeconfig": str(k8s_kubeconfig), "wait": "watcher", "operationTimeout": 2}}
    )
    k8s_emulator.set_behavior("slow-app", "unready", kind="Deployment")
    package = await adapter.upload_package(
        upload_of(
            build_chart(tmp_path / "s", "w", "1.0.0", templates={"deployment.yaml": DEPLOYMENT})
        )
    )
    failed = await adapter.create_deployment(spec(package, name="slow"), ctx())
    assert failed.status is DeploymentStatus.FAILED
    assert failed.message is not None

    k8s_emulator.set_behavior("fast-app", "ready", kind="Deployment")
    ready = await adapter.create_deployment(spec(package, name="fast"), ctx())
    assert ready.status is DeploymentStatus.DEPLOYED


# -- without a usable cluster -----------------------------------------------------------------


async def test_without_a_cluster_packages_work_and_deployments_say_how_to_configure(
    adapter_factory: AdapterFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    adapter = await adapter_factory()
    assert adapter.cluster.source() is None
    package = await adapter.upload_package(upload_of(build_chart(tmp_path / "s", "nc", "1.0.0")))
    health = await adapter.health()
    assert health.healthy
    assert health.details["cluster"] == "not configured"
    assert "clusterReachable" not in health.details

    for call in (
        adapter.create_deployment(spec(package, name="nc"), ctx()),
        adapter.get_deployment("team-a/nc"),
        adapter.get_history("team-a/nc"),
        adapter.rollback_deployment("team-a/nc", 0, ctx()),
        adapter.delete_deployment("team-a/nc", ctx()),
    ):
        with pytest.raises(ClusterNotConfigured) as caught:
            await call
        assert caught.value.status == 503
        assert "kubeconfig" in caught.value.message and "KUBECONFIG" in caught.value.message

    # Rendering needs no cluster: preview still works.
    preview = await adapter.preview_deployment(spec(package, name="nc"))
    assert "nc/templates/configmap.yaml" in preview.manifests


async def test_missing_kubeconfig_file_is_not_a_panic(
    adapter_factory: AdapterFactory, tmp_path: Path
) -> None:
    adapter = await adapter_factory({"cluster": {"kubeconfig": str(tmp_path / "absent")}})
    with pytest.raises(ClusterNotConfigured) as caught:
        await adapter.get_deployment("team-a/x")
    assert "does not exist" in caught.value.message


async def test_unreachable_cluster_is_503(
    adapter_factory: AdapterFactory, k8s_emulator_factory: Any, tmp_path: Path
) -> None:
    emulator = k8s_emulator_factory()
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kc")
    emulator.stop()  # the port is closed now
    adapter = await adapter_factory({"cluster": {"kubeconfig": str(kubeconfig)}})
    package = await adapter.upload_package(upload_of(build_chart(tmp_path / "s", "un", "1.0.0")))
    with pytest.raises(BackendUnavailable) as caught:
        await adapter.create_deployment(spec(package, name="un"), ctx())
    assert caught.value.status == 503
    assert not isinstance(caught.value, ClusterNotConfigured)  # configured, just unreachable
    health = await adapter.health()
    assert health.healthy  # package work goes on
    assert health.details["clusterReachable"] is False
    assert health.details["clusterMessage"]


async def test_gateway_timeout_cancels_helm_and_leaves_no_pending_release(
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Path,
) -> None:
    from netweave.errors import BackendTimeout

    adapter = await adapter_factory(
        {
            "cluster": {"kubeconfig": str(k8s_kubeconfig), "wait": "watcher"},
            "timeouts": {"write": 2},
        }
    )
    k8s_emulator.set_behavior("stuck-app", "unready", kind="Deployment")
    package = await adapter.upload_package(
        upload_of(
            build_chart(tmp_path / "s", "t", "1.0.0", templates={"deployment.yaml": DEPLOYMENT})
        )
    )
    with pytest.raises(BackendTimeout):
        await adapter.create_deployment(spec(package, name="stuck"), ctx())
    after = await adapter.get_deployment("team-a/stuck")
    assert after.status is DeploymentStatus.FAILED
    assert after.message is not None and "cancel" in after.message.lower()


async def test_follow_logs_streams_and_stops_when_the_reader_stops(
    adapter: HelmAdapter, app_chart: PackageInfo, k8s_emulator: KubernetesEmulator
) -> None:
    import threading

    created = await adapter.create_deployment(spec(app_chart, name="fl"), ctx())
    assert k8s_emulator.wait_idle()
    lines: list[str] = []
    stream = adapter.stream_logs(created.backend_ref, LogOptions(follow=True))
    async for line in stream:
        lines.append(line)
        if len(lines) == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert lines[0].endswith("started (image example/app:1)")

    # The reader threads finish once the stream is closed.
    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "netweave-pod-logs"]

    for _ in range(100):
        if not readers():
            break
        await asyncio.sleep(0.05)
    assert not readers()


async def test_inline_kubeconfig_content_and_context(
    adapter_factory: AdapterFactory, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    content = k8s_emulator.kubeconfig(context="lab")
    adapter = await adapter_factory({"cluster": {"kubeconfigContent": content, "context": "lab"}})
    assert adapter.cluster.source() == "inline kubeconfig (cluster.kubeconfigContent)"
    package = await adapter.upload_package(
        upload_of(
            build_chart(tmp_path / "s", "inl", "1.0.0", templates={"deployment.yaml": DEPLOYMENT})
        )
    )
    created = await adapter.create_deployment(spec(package, name="inl"), ctx())
    assert created.status is DeploymentStatus.DEPLOYED
    assert k8s_emulator.wait_idle()
    # The kubernetes client (logs) uses the same inline kubeconfig and context.
    lines = [
        line
        async for line in adapter.stream_logs(
            created.backend_ref, LogOptions(since_seconds=3600, tail_lines=10)
        )
    ]
    assert any("started" in line for line in lines)

    wrong = await adapter_factory(
        {"cluster": {"kubeconfigContent": content, "context": "nope"}}, name="wrong-context"
    )
    with pytest.raises(BackendUnavailable) as caught:
        await wrong.get_deployment(created.backend_ref)
    assert "nope" in caught.value.message


async def test_cluster_state_conflicts_are_409(
    adapter: HelmAdapter, app_chart: PackageInfo, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    from netweave.errors import Conflict

    # An object the release would create already exists, owned by nobody (not imported).
    k8s_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    k8s_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "taken-cfg", "namespace": "team-a"},
            "data": {"owner": "someone else"},
        }
    )
    with pytest.raises(Conflict) as caught:
        await adapter.create_deployment(spec(app_chart, name="taken"), ctx())
    assert "taken-cfg" in caught.value.message

    # A chart whose kind the cluster does not know (its CRD is missing).
    widget = "apiVersion: example.net/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}\n"
    package = await adapter.upload_package(
        upload_of(build_chart(tmp_path / "w", "widget", "1.0.0", templates={"w.yaml": widget}))
    )
    with pytest.raises(Conflict) as caught:
        await adapter.create_deployment(spec(package, name="widget"), ctx())
    assert "Widget" in caught.value.message


async def test_update_without_package_needs_the_chart_in_the_repository(
    adapter: HelmAdapter, app_chart: PackageInfo
) -> None:
    from netweave.errors import Conflict

    created = await adapter.create_deployment(spec(app_chart, name="orphan"), ctx())
    await adapter.delete_package(app_chart.backend_ref)  # the core would refuse (in use)
    with pytest.raises(Conflict) as caught:
        await adapter.update_deployment(
            created.backend_ref, DeploymentChange(values={"greeting": "x"}), ctx()
        )
    assert "app:1.0.0" in caught.value.message
    # Nothing changed in the cluster.
    assert (await adapter.get_deployment(created.backend_ref)).revision == 1


async def test_history_bound_is_kept_when_upgrades_below_it_skip_the_pruning_read(
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    k8s_emulator: KubernetesEmulator,
    tmp_path: Path,
) -> None:
    """Below ``maxHistory`` an upgrade has nothing to prune, so Helm is not asked to (its
    pruning lists every stored revision first); from the bound on it prunes as before."""
    adapter = await adapter_factory(
        {"cluster": {"kubeconfig": str(k8s_kubeconfig), "maxHistory": 3}}
    )
    archive = build_chart(tmp_path / "src", "app", "1.0.0", templates={"cm.yaml": CONFIGMAP})
    package = await adapter.upload_package(upload_of(archive))
    created = await adapter.create_deployment(spec(package, greeting="0"), ctx())

    def revisions() -> list[int]:
        secrets = k8s_emulator.list("v1", "Secret", "team-a", label_selector="name=rel,owner=helm")
        return sorted(int(s["metadata"]["labels"]["version"]) for s in secrets)

    def history_lists() -> int:
        return sum(
            1
            for r in k8s_emulator.requests
            if r.method == "GET"
            and not r.watch
            and r.path == "/api/v1/namespaces/team-a/secrets"
            and "name%3Drel" in r.query
        )

    listed = []
    for n in range(1, 6):
        k8s_emulator.clear_requests()
        info = await adapter.update_deployment(
            created.backend_ref, DeploymentChange(values={"greeting": str(n)}), ctx()
        )
        assert info.revision == n + 1
        listed.append(history_lists())
    # Revisions 1 and 2 lay below the bound: the adapter's and Helm's reads of the latest
    # revision only (with the bound passed, Helm lists the history once more first); from
    # revision 3 on Helm prunes (its history read twice).
    assert listed == [2, 2, 4, 4, 4]
    assert revisions() == [4, 5, 6]

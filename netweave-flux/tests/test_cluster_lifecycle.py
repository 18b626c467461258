"""Cluster mode against the K8s emulator with the real Flux CRDs and the simulated Flux."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from flux_sim import FluxSimulator
from netweave.adapters import DeploymentChange, OperationContext, PackageInfo, PackageUpload
from netweave.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from netweave.models import DeploymentStatus, LogOptions
from netweave.testing.k8s import KubernetesEmulator
from netweave_flux.adapter import FluxAdapter

_ids = itertools.count(1)


def ctx() -> OperationContext:
    n = next(_ids)
    return OperationContext(operation_id=f"op-{n}", idempotency_key=f"op-{n}:0")


async def settle(
    adapter: FluxAdapter, ref: str, wanted: DeploymentStatus = DeploymentStatus.DEPLOYED
) -> Any:
    deadline = time.monotonic() + 20
    last = None
    while time.monotonic() < deadline:
        last = await adapter.get_deployment(ref)
        if last.status is wanted:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ref} did not reach {wanted}: last {last}")


async def gone(adapter: FluxAdapter, ref: str) -> None:
    with pytest.raises(NotFound):
        await adapter.get_deployment(ref)


def helm_package(version: str = "1.0.0", chart: str = "podinfo") -> PackageUpload:
    return PackageUpload(
        name="podinfo",
        version=version,
        package_type="helm",
        package_uri="https://stefanprodan.github.io/podinfo",
        source={"chart": chart},
    )


def git_package(version: str = "1.0.0", path: str = "./deploy/overlays/prod") -> PackageUpload:
    return PackageUpload(
        name="webapp",
        version=version,
        package_type="git-repo",
        package_uri="https://git.example.org/webapp.git",
        source={"tag": f"v{version}", "path": path},
    )


def spec(package: PackageInfo, name: str, values: dict[str, Any] | None = None) -> Any:
    from netweave.adapters import DeploymentSpec

    return DeploymentSpec(
        deployment_id=f"dep-{name}",
        name=name,
        namespace="apps",
        package=package,
        values=dict(values or {}),
    )


# -- packages ------------------------------------------------------------------------------------


async def test_sources_are_registered_and_valid(
    adapter: FluxAdapter, emulator: KubernetesEmulator
) -> None:
    helm = await adapter.upload_package(helm_package())
    git = await adapter.upload_package(git_package())
    oci = await adapter.upload_package(
        PackageUpload(
            name="redis",
            version="18.1.0",
            package_type="oci",
            package_uri="oci://registry.example.org/charts/redis",
        )
    )
    assert helm.backend_ref == "flux-system/HelmRepository/podinfo-1.0.0"
    assert git.backend_ref == "flux-system/GitRepository/webapp-1.0.0"
    assert oci.backend_ref == "flux-system/OCIRepository/redis-18.1.0"
    repo = emulator.get(
        "source.toolkit.fluxcd.io/v1", "GitRepository", "webapp-1.0.0", "flux-system"
    )
    assert repo is not None
    assert repo["spec"]["ref"] == {"tag": "v1.0.0"}
    assert repo["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "netweave"
    ocirepo = emulator.get(
        "source.toolkit.fluxcd.io/v1", "OCIRepository", "redis-18.1.0", "flux-system"
    )
    assert ocirepo is not None and ocirepo["spec"]["ref"] == {"tag": "18.1.0"}
    listed = {p.backend_ref for p in await adapter.list_packages()}
    assert listed == {helm.backend_ref, git.backend_ref, oci.backend_ref}
    got = await adapter.get_package(helm.backend_ref)
    assert got.extensions["chart"] == "podinfo"
    assert got.package_type == "helm"
    with pytest.raises(AlreadyExists):
        await adapter.upload_package(helm_package())
    await adapter.delete_package(git.backend_ref)
    with pytest.raises(NotFound):
        await adapter.get_package(git.backend_ref)


async def test_archives_and_bad_sources_are_refused(adapter: FluxAdapter, tmp_path: Any) -> None:
    archive = tmp_path / "x.tgz"
    archive.write_bytes(b"x")
    with pytest.raises(InvalidInput, match="registers Flux sources"):
        await adapter.upload_package(
            PackageUpload(name="x", version="1", package_type="helm", archive=archive)
        )
    with pytest.raises(InvalidInput, match=r"source\.chart"):
        await adapter.upload_package(
            PackageUpload(name="x", version="1", package_type="helm", package_uri="https://h.io")
        )
    with pytest.raises(InvalidInput, match="oci://"):
        await adapter.upload_package(
            PackageUpload(name="x", version="1", package_type="oci", package_uri="https://h.io")
        )
    with pytest.raises(InvalidInput, match="relative path"):
        await adapter.upload_package(
            PackageUpload(
                name="x",
                version="1",
                package_type="git-repo",
                package_uri="https://g.io/r.git",
                source={"path": "../etc"},
            )
        )


async def test_empty_source_fields_are_refused(adapter: FluxAdapter) -> None:
    with pytest.raises(InvalidInput, match=r"source\.tag"):
        await adapter.upload_package(
            PackageUpload(
                name="bad",
                version="1",
                package_type="git-repo",
                package_uri="https://g.io/r.git",
                source={"tag": ""},
            )
        )


# -- HelmRelease lifecycle -----------------------------------------------------------------------


async def test_helmrelease_install_upgrade_history_rollback(
    adapter: FluxAdapter, emulator: KubernetesEmulator, flux: FluxSimulator
) -> None:
    v1 = await adapter.upload_package(helm_package("1.0.0"))
    v2 = await adapter.upload_package(helm_package("2.0.0"))
    created = await adapter.create_deployment(spec(v1, "web", {"replicaCount": 1}), ctx())
    assert created.backend_ref == "apps/HelmRelease/web"
    assert created.status in (DeploymentStatus.PENDING, DeploymentStatus.DEPLOYING)
    hr = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps")
    assert hr is not None
    assert hr["spec"]["chart"]["spec"]["sourceRef"] == {
        "kind": "HelmRepository",
        "name": "podinfo-1.0.0",
        "namespace": "flux-system",
    }
    assert "chartRef" not in hr["spec"]
    assert hr["spec"]["upgrade"]["remediation"]["strategy"] == "rollback"
    assert "reconcile.fluxcd.io/requestedAt" in hr["metadata"]["annotations"]
    first = await settle(adapter, created.backend_ref)
    assert first.revision == 1
    assert first.package_version == "1.0.0"

    # values change → Helm revision 2
    await adapter.update_deployment(
        first.backend_ref, DeploymentChange(values={"ui": {"color": "red"}}), ctx()
    )
    second = await settle(adapter, first.backend_ref)
    assert second.revision == 2
    assert second.values == {"replicaCount": 1, "ui": {"color": "red"}}

    # upgrade to chart 2.0.0 → revision 3
    await adapter.update_deployment(first.backend_ref, DeploymentChange(package=v2), ctx())
    third = await settle(adapter, first.backend_ref)
    assert (third.revision, third.package_version) == (3, "2.0.0")
    assert third.extensions["chartVersion"] == "2.0.0"

    history = await adapter.get_history(first.backend_ref)
    assert [h.revision for h in history] == [3, 2, 1]
    assert [h.status for h in history] == ["deployed", "superseded", "superseded"]
    assert history[2].values == {"replicaCount": 1}
    assert history[1].values == {"replicaCount": 1, "ui": {"color": "red"}}

    # rollback to revision 1: chart version AND values of that revision, as a new revision 4
    await adapter.rollback_deployment(first.backend_ref, 1, ctx())
    back = await settle(adapter, first.backend_ref)
    assert back.revision == 4
    assert back.package_version == "1.0.0"
    assert back.values == {"replicaCount": 1}
    hr = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "apps")
    assert hr is not None
    assert hr["spec"]["chart"]["spec"]["version"] == "1.0.0"

    # rollback 0 = the previous successful release (revision 3: chart 2.0.0)
    await adapter.rollback_deployment(first.backend_ref, 0, ctx())
    again = await settle(adapter, first.backend_ref)
    assert (again.revision, again.package_version) == (5, "2.0.0")
    with pytest.raises(InvalidInput, match="revision 42"):
        await adapter.rollback_deployment(first.backend_ref, 42, ctx())


async def test_rollback_refuses_unknown_values(
    adapter: FluxAdapter, emulator: KubernetesEmulator
) -> None:
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "manual", {"a": 1}), ctx())
    await settle(adapter, info.backend_ref)
    # Someone outside netweave changes the values (kubectl edit): netweave has no record of them.
    from kubernetes import client as k8s

    api = k8s.CustomObjectsApi(emulator.kubernetes_client())
    await asyncio.to_thread(
        api.patch_namespaced_custom_object,
        "helm.toolkit.fluxcd.io",
        "v2",
        "apps",
        "helmreleases",
        "manual",
        {"spec": {"values": {"a": 2}}},
    )
    await settle_revision(adapter, info.backend_ref, 2)
    await adapter.update_deployment(info.backend_ref, DeploymentChange(values={"b": 1}), ctx())
    await settle_revision(adapter, info.backend_ref, 3)
    # Revision 2 carried values netweave never applied: refuse rather than guess.
    with pytest.raises(Conflict, match="no record of the values"):
        await adapter.rollback_deployment(info.backend_ref, 2, ctx())
    # Revision 1 is known.
    await adapter.rollback_deployment(info.backend_ref, 1, ctx())
    back = await settle_revision(adapter, info.backend_ref, 4)
    assert back.values == {"a": 1}


async def test_rollback_with_a_config_digest_netweave_cannot_compute(
    adapter: FluxAdapter, flux: FluxSimulator
) -> None:
    # Should Flux digest values differently from netweave's mirror, the ledger entries are
    # bound to the digest Flux reported for the reconcile each change requested.
    flux.foreign_digest = True
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "foreign", {"a": 1}), ctx())
    await settle_revision(adapter, info.backend_ref, 1)
    await adapter.update_deployment(info.backend_ref, DeploymentChange(values={"b": 2}), ctx())
    await settle_revision(adapter, info.backend_ref, 2)
    history = await adapter.get_history(info.backend_ref)
    assert [h.values for h in history] == [{"a": 1, "b": 2}, {"a": 1}]
    await adapter.rollback_deployment(info.backend_ref, 1, ctx())
    back = await settle_revision(adapter, info.backend_ref, 3)
    assert back.values == {"a": 1}


async def settle_revision(adapter: FluxAdapter, ref: str, revision: int) -> Any:
    deadline = time.monotonic() + 20
    last = None
    while time.monotonic() < deadline:
        last = await adapter.get_deployment(ref)
        if last.revision == revision and last.status is DeploymentStatus.DEPLOYED:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ref} did not reach revision {revision}: {last}")


async def test_idempotent_create_and_update(adapter: FluxAdapter, flux: FluxSimulator) -> None:
    pkg = await adapter.upload_package(helm_package())
    op = ctx()
    a = await adapter.create_deployment(spec(pkg, "idem"), op)
    b = await adapter.create_deployment(spec(pkg, "idem"), op)  # a retried step
    assert a.backend_ref == b.backend_ref
    with pytest.raises(AlreadyExists):
        await adapter.create_deployment(spec(pkg, "idem"), ctx())
    await settle(adapter, a.backend_ref)
    up = ctx()
    await adapter.update_deployment(a.backend_ref, DeploymentChange(values={"x": 1}), up)
    await settle_revision(adapter, a.backend_ref, 2)
    # The same step retried (merge of a value that would change nothing anyway is not the
    # point: a retried scale with the same key must not write again).
    await adapter.update_deployment(a.backend_ref, DeploymentChange(values={"x": 2}), up)
    info = await settle(adapter, a.backend_ref)
    assert info.values == {"x": 1}
    assert info.revision == 2
    assert [r for r in flux.releases if r[1] == "apps/idem"] == [
        ("install", "apps/idem", "1.0.0"),
        ("upgrade", "apps/idem", "1.0.0"),
    ]


async def test_scale_logs_and_inventory(adapter: FluxAdapter, emulator: KubernetesEmulator) -> None:
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "scaled"), ctx())
    await settle(adapter, info.backend_ref)
    await adapter.scale_deployment(info.backend_ref, 3, ctx())
    scaled = await settle_revision(adapter, info.backend_ref, 2)
    assert scaled.values == {"replicaCount": 3}
    assert [r.kind for r in scaled.resources] == ["Deployment"]
    deadline = time.monotonic() + 10
    pods: list[Any] = []
    while time.monotonic() < deadline:
        pods = emulator.list("v1", "Pod", "apps", "app.kubernetes.io/instance=scaled")
        if len(pods) == 3:
            break
        await asyncio.sleep(0.05)
    assert len(pods) == 3
    lines = [line async for line in adapter.stream_logs(info.backend_ref, LogOptions())]
    assert lines and all(line.startswith("[scaled-") for line in lines)
    one = [line async for line in adapter.stream_logs(info.backend_ref, LogOptions(tail_lines=1))]
    assert len(one) == 3  # one line per pod
    await adapter.scale_deployment(info.backend_ref, 0, ctx())
    zero = await settle_revision(adapter, info.backend_ref, 3)
    assert zero.values == {"replicaCount": 0}


async def test_failed_upgrade_is_remediated_then_stalls(
    adapter: FluxAdapter, flux: FluxSimulator, kubeconfig: Any
) -> None:
    flux.failing_chart_versions.add("6.6.6")
    pkg = await adapter.upload_package(helm_package())
    bad = await adapter.upload_package(helm_package("6.6.6"))
    info = await adapter.create_deployment(spec(pkg, "flaky", {"replicaCount": 2}), ctx())
    await settle(adapter, info.backend_ref)
    await adapter.update_deployment(info.backend_ref, DeploymentChange(package=bad), ctx())
    failed = await settle(adapter, info.backend_ref, DeploymentStatus.FAILED)
    # Three upgrade retries by default, each failing and rolled back; then Stalled.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and failed.backend_status != "RetriesExceeded":
        await asyncio.sleep(0.05)
        failed = await adapter.get_deployment(info.backend_ref)
    assert failed.status is DeploymentStatus.FAILED
    assert failed.backend_status == "RetriesExceeded"
    history = await adapter.get_history(info.backend_ref)
    assert history[0].status == "deployed" and "rollback" in (history[0].description or "")
    assert any(h.status == "failed" for h in history)
    upgrades = [r for r in flux.releases if r[1] == "apps/flaky" and r[2] == "6.6.6"]
    assert len(upgrades) == 4  # the first attempt plus three retries
    # Going back to the good chart clears it.
    await adapter.update_deployment(info.backend_ref, DeploymentChange(package=pkg), ctx())
    ok = await settle(adapter, info.backend_ref)
    assert ok.package_version == "1.0.0"


async def test_rollback_to_a_revision_flux_no_longer_lists(
    adapter: FluxAdapter, flux: FluxSimulator, emulator: KubernetesEmulator
) -> None:
    # A failed upgrade, retried and remediated three times, pushes revision 1 out of
    # status.history; netweave's ledger still knows the values revision 1 ran.
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "pushed", {"replicaCount": 2}), ctx())
    await settle_revision(adapter, info.backend_ref, 1)
    with flux.failing("admission webhook denied the request: no"):
        await adapter.update_deployment(
            info.backend_ref, DeploymentChange(values={"replicaCount": 3}), ctx()
        )
        failed = await settle(adapter, info.backend_ref, DeploymentStatus.FAILED)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and failed.backend_status != "RetriesExceeded":
            await asyncio.sleep(0.05)
            failed = await adapter.get_deployment(info.backend_ref)
    assert "admission webhook denied the request: no" in (failed.message or "")
    assert 1 not in [h.revision for h in await adapter.get_history(info.backend_ref)]
    await adapter.rollback_deployment(info.backend_ref, 1, ctx())
    back = await settle(adapter, info.backend_ref)
    assert back.values == {"replicaCount": 2}
    hr = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "pushed", "apps")
    assert hr is not None and hr["spec"]["values"] == {"replicaCount": 2}
    with pytest.raises(InvalidInput, match="revision 42"):
        await adapter.rollback_deployment(info.backend_ref, 42, ctx())


async def test_failing_install_without_retries_is_failed(
    kubeconfig: Any, flux: FluxSimulator
) -> None:
    from conftest import make_adapter

    adapter = make_adapter(kubeconfig, remediation={"installRetries": 0})
    await adapter.start()
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "broken", {"simulateFailure": True}), ctx())
    failed = await settle(adapter, info.backend_ref, DeploymentStatus.FAILED)
    # No install retries: the first failure is remediated (uninstalled) and the release stalls.
    assert failed.backend_status == "RetriesExceeded"
    history = await adapter.get_history(info.backend_ref)
    assert [h.status for h in history] == ["uninstalled"]
    await adapter.stop()


async def test_source_not_ready_is_failed_with_reason(
    adapter: FluxAdapter, flux: FluxSimulator
) -> None:
    flux.broken_sources.add("podinfo-1.0.0")
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "nosrc"), ctx())
    failed = await settle(adapter, info.backend_ref, DeploymentStatus.FAILED)
    assert failed.backend_status == "ArtifactFailed"


async def test_suspend_resume_and_delete_of_a_suspended_release(
    adapter: FluxAdapter, emulator: KubernetesEmulator, flux: FluxSimulator
) -> None:
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "paused"), ctx())
    await settle(adapter, info.backend_ref)
    await adapter.update_deployment(info.backend_ref, DeploymentChange(suspend=True), ctx())
    suspended = await adapter.get_deployment(info.backend_ref)
    assert suspended.status is DeploymentStatus.SUSPENDED
    assert "last state DEPLOYED" in (suspended.message or "")
    # A change while suspended is written but not reconciled.
    await adapter.update_deployment(info.backend_ref, DeploymentChange(values={"x": 1}), ctx())
    await asyncio.sleep(0.3)
    still = await adapter.get_deployment(info.backend_ref)
    assert (still.status, still.revision) == (DeploymentStatus.SUSPENDED, 1)
    await adapter.update_deployment(info.backend_ref, DeploymentChange(suspend=False), ctx())
    resumed = await settle_revision(adapter, info.backend_ref, 2)
    assert resumed.values == {"x": 1}
    await adapter.update_deployment(info.backend_ref, DeploymentChange(suspend=True), ctx())
    assert emulator.get("apps/v1", "Deployment", "paused", "apps") is not None
    # Delete resumes first, so the controller uninstalls (a suspended HelmRelease would not).
    await adapter.delete_deployment(info.backend_ref, ctx())
    await gone(adapter, info.backend_ref)
    assert "apps/paused" in flux.uninstalled
    assert emulator.get("apps/v1", "Deployment", "paused", "apps") is None


async def test_deleting_a_suspended_release_directly_orphans_it(
    adapter: FluxAdapter, emulator: KubernetesEmulator, flux: FluxSimulator
) -> None:
    """The trap the adapter avoids: deleting a suspended HelmRelease does not uninstall."""
    from kubernetes import client as k8s

    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "orphan"), ctx())
    await settle(adapter, info.backend_ref)
    await adapter.update_deployment(info.backend_ref, DeploymentChange(suspend=True), ctx())
    api = k8s.CustomObjectsApi(emulator.kubernetes_client())
    await asyncio.to_thread(
        api.delete_namespaced_custom_object,
        "helm.toolkit.fluxcd.io",
        "v2",
        "apps",
        "helmreleases",
        "orphan",
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "orphan", "apps") is None:
            break
        await asyncio.sleep(0.05)
    await gone(adapter, info.backend_ref)
    assert "apps/orphan" not in flux.uninstalled
    assert emulator.get("apps/v1", "Deployment", "orphan", "apps") is not None


async def test_delete_waits_for_the_finalizer(
    adapter: FluxAdapter, emulator: KubernetesEmulator, flux: FluxSimulator
) -> None:
    pkg = await adapter.upload_package(helm_package())
    info = await adapter.create_deployment(spec(pkg, "fin"), ctx())
    await settle(adapter, info.backend_ref)
    hr = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "fin", "apps")
    assert hr is not None and hr["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]
    emulator.controllers.unregister("HelmRelease", group="helm.toolkit.fluxcd.io")
    task = asyncio.create_task(adapter.delete_deployment(info.backend_ref, ctx()))
    deleting = await settle(adapter, info.backend_ref, DeploymentStatus.DELETING)
    assert deleting.status is DeploymentStatus.DELETING
    assert not task.done(), "delete must not report success while the finalizer is there"
    FluxSimulator(emulator)  # the controller comes back and finishes the uninstall
    await asyncio.wait_for(task, 10)
    await gone(adapter, info.backend_ref)


async def test_preview_of_create_and_update(
    adapter: FluxAdapter, emulator: KubernetesEmulator
) -> None:
    import yaml

    pkg = await adapter.upload_package(helm_package())
    v2 = await adapter.upload_package(helm_package("2.0.0"))
    preview = await adapter.preview_deployment(spec(pkg, "pre", {"replicaCount": 2}))
    (name, text), *_ = preview.manifests.items()
    assert name == "apps/helmrelease-pre.yaml"
    rendered = yaml.safe_load(text)
    assert rendered["spec"]["values"] == {"replicaCount": 2}
    assert emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "pre", "apps") is None
    info = await adapter.create_deployment(spec(pkg, "pre", {"replicaCount": 2}), ctx())
    await settle(adapter, info.backend_ref)
    before = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "pre", "apps")
    change = DeploymentChange(package=v2, values={"replicaCount": 5})
    preview = await adapter.preview_deployment(spec(pkg, "pre"), change)
    diff = preview.extensions["diff"]
    assert "-    version: 1.0.0" in diff and "+    version: 2.0.0" in diff
    assert "+  replicaCount: 5" in diff
    after = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "pre", "apps")
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_missing_namespace_is_invalid_input(adapter: FluxAdapter) -> None:
    from netweave.adapters import DeploymentSpec

    pkg = await adapter.upload_package(helm_package())
    spec_ = DeploymentSpec(deployment_id="d", name="x", namespace="nowhere", package=pkg)
    with pytest.raises(InvalidInput, match="namespace 'nowhere' does not exist"):
        await adapter.create_deployment(spec_, ctx())


async def test_unknown_references_are_not_found(adapter: FluxAdapter) -> None:
    for ref in ("nope", "apps/HelmRelease/missing", "apps/Secret/x"):
        with pytest.raises(NotFound):
            await adapter.get_deployment(ref)
    with pytest.raises(NotFound):
        await adapter.get_package("flux-system/HelmRepository/missing-1")
    with pytest.raises(NotFound):
        await adapter.delete_deployment("apps/Kustomization/missing", ctx())


# -- Kustomization lifecycle ---------------------------------------------------------------------


async def test_kustomization_lifecycle(
    adapter: FluxAdapter, emulator: KubernetesEmulator, flux: FluxSimulator
) -> None:
    v1 = await adapter.upload_package(git_package("1.0.0"))
    v2 = await adapter.upload_package(git_package("2.0.0", "./deploy/v2"))
    info = await adapter.create_deployment(spec(v1, "shop", {"replicas": 2, "env": "prod"}), ctx())
    assert info.backend_ref == "apps/Kustomization/shop"
    ks = emulator.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop", "apps")
    assert ks is not None
    assert ks["spec"]["path"] == "./deploy/overlays/prod"
    assert ks["spec"]["prune"] is True
    assert ks["spec"]["postBuild"]["substitute"] == {"replicas": "2", "env": "prod"}
    first = await settle(adapter, info.backend_ref)
    assert first.revision == 1
    assert first.extensions["lastAppliedRevision"].startswith("v1.0.0@sha1:")
    await adapter.update_deployment(info.backend_ref, DeploymentChange(package=v2), ctx())
    second = await settle_revision(adapter, info.backend_ref, 2)
    assert second.package_version == "2.0.0"
    await adapter.scale_deployment(info.backend_ref, 4, ctx())
    third = await settle_revision(adapter, info.backend_ref, 3)
    assert third.values == {"replicas": "4", "env": "prod"}
    history = await adapter.get_history(info.backend_ref)
    assert [(h.revision, h.status) for h in history] == [
        (3, "DEPLOYED"),
        (2, "SUPERSEDED"),
        (1, "SUPERSEDED"),
    ]
    await adapter.rollback_deployment(info.backend_ref, 1, ctx())
    back = await settle_revision(adapter, info.backend_ref, 4)
    assert (back.package_version, back.values) == ("1.0.0", {"replicas": "2", "env": "prod"})
    with pytest.raises(InvalidInput, match="flat values"):
        await adapter.update_deployment(
            info.backend_ref, DeploymentChange(values={"nested": {"a": 1}}), ctx()
        )
    await adapter.delete_deployment(info.backend_ref, ctx())
    await gone(adapter, info.backend_ref)
    assert emulator.get("apps/v1", "Deployment", "shop", "apps") is None


async def test_kustomization_build_failure(adapter: FluxAdapter) -> None:
    pkg = await adapter.upload_package(git_package("3.0.0", "./deploy/fail"))
    info = await adapter.create_deployment(spec(pkg, "nobuild"), ctx())
    failed = await settle(adapter, info.backend_ref, DeploymentStatus.FAILED)
    assert failed.backend_status == "BuildFailed"


async def test_package_kind_must_match_the_deployment(adapter: FluxAdapter) -> None:
    helm = await adapter.upload_package(helm_package())
    git = await adapter.upload_package(git_package())
    info = await adapter.create_deployment(spec(helm, "mixed"), ctx())
    with pytest.raises(InvalidInput, match="cannot use it"):
        await adapter.update_deployment(info.backend_ref, DeploymentChange(package=git), ctx())


async def test_oci_chart_uses_chart_ref(adapter: FluxAdapter, emulator: KubernetesEmulator) -> None:
    pkg = await adapter.upload_package(
        PackageUpload(
            name="redis",
            version="18.1.0",
            package_type="oci",
            package_uri="oci://registry.example.org/charts/redis",
        )
    )
    info = await adapter.create_deployment(spec(pkg, "cache"), ctx())
    hr = emulator.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "cache", "apps")
    assert hr is not None
    assert hr["spec"]["chartRef"] == {
        "kind": "OCIRepository",
        "name": "redis-18.1.0",
        "namespace": "flux-system",
    }
    assert "chart" not in hr["spec"]
    done = await settle(adapter, info.backend_ref)
    assert done.extensions["chartVersion"] == "18.1.0"


async def test_no_cluster_is_cluster_not_configured(tmp_path: Any) -> None:
    from conftest import make_adapter
    from netweave.errors import ClusterNotConfigured

    adapter = make_adapter(tmp_path / "missing-kubeconfig")
    await adapter.start()
    with pytest.raises(ClusterNotConfigured, match="configure a cluster"):
        await adapter.list_packages()
    assert (await adapter.health()).healthy is False

"""Interrupted Helm work, recovered with Helm's own means: a resumed operation finishes what its
interrupted attempt left ``pending-*`` (uninstall + install, rollback + upgrade), a release left
pending by anything else is a 409 that says how to get out, and a timed-out SDK call leaves no
unretrieved exception behind and keeps the release's lock until Helm has returned."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import pytest
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from conftest import AdapterFactory, upload_of
from killedhelm import leave_pending, release_records
from netweave.adapters import DeploymentChange, DeploymentSpec, OperationContext, PackageInfo
from netweave.errors import BackendTimeout, Conflict, InvalidInput
from netweave.models import DeploymentStatus
from netweave.testing.k8s import KubernetesEmulator
from netweave_helm.adapter import DEPLOYMENT_LABEL, OP_LABEL, HelmAdapter, key_label

NS = "team-r"


def ctx(key: str, attempt: int = 1) -> OperationContext:
    return OperationContext(operation_id=f"op-{key}", idempotency_key=key, attempt=attempt)


def spec(package: PackageInfo, name: str, **values: Any) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}", name=name, namespace=NS, package=package, values=values
    )


@pytest.fixture
async def adapter(adapter_factory: AdapterFactory, k8s_kubeconfig: Path) -> HelmAdapter:
    return await adapter_factory({"cluster": {"kubeconfig": str(k8s_kubeconfig)}})


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return build_chart(
        tmp_path / "src",
        "app",
        "1.0.0",
        values={"greeting": "hello", "replicaCount": 1, "tag": "1"},
        templates={"configmap.yaml": CONFIGMAP, "deployment.yaml": DEPLOYMENT},
    )


@pytest.fixture
async def package(adapter: HelmAdapter, chart: Path) -> PackageInfo:
    return await adapter.upload_package(upload_of(chart))


def replicas(k8s: KubernetesEmulator, name: str) -> int:
    obj = k8s.get("apps/v1", "Deployment", f"{name}-app", NS)
    assert obj is not None, f"no Deployment {name}-app"
    return int(obj["spec"]["replicas"])


async def test_resumed_create_reinstalls_its_own_pending_install_release(
    adapter: HelmAdapter,
    package: PackageInfo,
    chart: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    labels = {OP_LABEL: key_label("create-1"), DEPLOYMENT_LABEL: "dep-web"}
    leave_pending(
        k8s_emulator, k8s_kubeconfig, "install", "web", NS, chart=chart, labels=labels,
        values={"replicaCount": 2},
    )  # fmt: skip
    assert release_records(k8s_emulator, "web", NS) == [(1, "pending-install")]

    info = await adapter.create_deployment(spec(package, "web", replicaCount=2), ctx("create-1", 2))
    assert info.status is DeploymentStatus.DEPLOYED, info
    assert info.revision == 1
    # Uninstalled and installed once more: one release, one revision, deployed.
    assert release_records(k8s_emulator, "web", NS) == [(1, "deployed")]
    assert replicas(k8s_emulator, "web") == 2
    assert k8s_emulator.get("v1", "ConfigMap", "web-cfg", NS) is not None

    # Resumed once more (the runner may retry after that): nothing installed again.
    again = await adapter.create_deployment(
        spec(package, "web", replicaCount=2), ctx("create-1", 3)
    )
    assert (again.status, again.revision) == (DeploymentStatus.DEPLOYED, 1)
    assert release_records(k8s_emulator, "web", NS) == [(1, "deployed")]


async def test_a_pending_install_that_is_not_ours_is_a_409_saying_how_to_recover(
    adapter: HelmAdapter,
    package: PackageInfo,
    chart: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    # A `helm install` from a shell, killed: no netweave stamp at all.
    leave_pending(k8s_emulator, k8s_kubeconfig, "install", "cli", NS, chart=chart)
    with pytest.raises(Conflict) as caught:
        await adapter.create_deployment(spec(package, "cli"), ctx("create-2", 2))
    message = caught.value.message
    assert "pending-install" in message and f"helm uninstall cli -n {NS}" in message
    assert caught.value.details["helmStatus"] == "pending-install"
    # Left as it was for its owner to decide.
    assert release_records(k8s_emulator, "cli", NS) == [(1, "pending-install")]

    # Another operation's pending install (the stamp of another key) is not ours either.
    other = {OP_LABEL: key_label("someone-else")}
    leave_pending(k8s_emulator, k8s_kubeconfig, "install", "other", NS, chart=chart, labels=other)
    with pytest.raises(Conflict):
        await adapter.create_deployment(spec(package, "other"), ctx("create-3", 2))
    assert release_records(k8s_emulator, "other", NS) == [(1, "pending-install")]


async def test_resumed_upgrade_rolls_back_its_own_pending_upgrade_and_upgrades_again(
    adapter: HelmAdapter,
    package: PackageInfo,
    chart: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    created = await adapter.create_deployment(spec(package, "up"), ctx("create-up"))
    assert created.status is DeploymentStatus.DEPLOYED
    mine = {OP_LABEL: key_label("scale-1")}
    leave_pending(
        k8s_emulator, k8s_kubeconfig, "upgrade", "up", NS, chart=chart, labels=mine,
        values={"replicaCount": 3},
    )  # fmt: skip
    assert release_records(k8s_emulator, "up", NS)[-1] == (2, "pending-upgrade")

    scaled = await adapter.scale_deployment(created.backend_ref, 3, ctx("scale-1", 2))
    assert scaled.status is DeploymentStatus.DEPLOYED, scaled
    # Helm's way out: a rollback (revision 3), then the upgrade again (revision 4).
    records = release_records(k8s_emulator, "up", NS)
    assert records[-1] == (4, "deployed")
    assert [status for _, status in records].count("deployed") == 1
    assert replicas(k8s_emulator, "up") == 3
    assert scaled.values is not None and scaled.values["replicaCount"] == 3
    history = await adapter.get_history(created.backend_ref)
    # The interrupted revision never finished: reported so, not as still deploying.
    assert [h.status for h in history] == ["SUPERSEDED", "FAILED", "SUPERSEDED", "DEPLOYED"]

    # Not run a third time once done.
    again = await adapter.scale_deployment(created.backend_ref, 3, ctx("scale-1", 3))
    assert again.revision == 4


async def test_a_foreign_pending_upgrade_is_refused_and_a_rollback_gets_out_of_it(
    adapter: HelmAdapter,
    package: PackageInfo,
    chart: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    created = await adapter.create_deployment(spec(package, "fx", greeting="v1"), ctx("c-fx"))
    # `helm upgrade` from a shell, killed (its revision keeps the release's older labels).
    leave_pending(
        k8s_emulator, k8s_kubeconfig, "upgrade", "fx", NS, chart=chart,
        values={"greeting": "cli"},
    )  # fmt: skip
    change = DeploymentChange(values={"greeting": "v2"})
    with pytest.raises(Conflict) as caught:
        await adapter.update_deployment(created.backend_ref, change, ctx("u-fx"))
    message = caught.value.message
    assert "pending-upgrade" in message and f"helm rollback fx -n {NS}" in message
    assert "/rollback" in message
    assert release_records(k8s_emulator, "fx", NS)[-1] == (2, "pending-upgrade")
    with pytest.raises(Conflict):  # scale, too
        await adapter.scale_deployment(created.backend_ref, 2, ctx("s-fx"))

    # The way out the message names: a rollback (Helm's works on a pending release).
    rolled = await adapter.rollback_deployment(created.backend_ref, 1, ctx("r-fx"))
    assert (rolled.status, rolled.revision) == (DeploymentStatus.DEPLOYED, 3)
    assert rolled.values == {"greeting": "v1"}
    updated = await adapter.update_deployment(created.backend_ref, change, ctx("u-fx-2"))
    assert (updated.status, updated.revision) == (DeploymentStatus.DEPLOYED, 4)
    cfg = k8s_emulator.get("v1", "ConfigMap", "fx-cfg", NS)
    assert cfg is not None and cfg["data"]["greeting"] == "v2"


async def test_rollback_to_previous_finishes_an_interrupted_rollback(
    adapter: HelmAdapter,
    package: PackageInfo,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    created = await adapter.create_deployment(spec(package, "rb", greeting="one"), ctx("c-rb"))
    change = DeploymentChange(values={"greeting": "two"})
    await adapter.update_deployment(created.backend_ref, change, ctx("u-rb"))
    await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"greeting": "three"}), ctx("u-rb-2")
    )
    # A rollback to revision 1, killed mid-way: revision 4 stays pending-rollback.
    leave_pending(k8s_emulator, k8s_kubeconfig, "rollback", "rb", NS, revision=1)
    assert release_records(k8s_emulator, "rb", NS)[-1] == (4, "pending-rollback")

    # "Previous" now means the interrupted rollback's target (1), not revision 3.
    rolled = await adapter.rollback_deployment(created.backend_ref, 0, ctx("r-rb", 2))
    assert (rolled.status, rolled.revision) == (DeploymentStatus.DEPLOYED, 5)
    assert rolled.values == {"greeting": "one"}
    cfg = k8s_emulator.get("v1", "ConfigMap", "rb-cfg", NS)
    assert cfg is not None and cfg["data"]["greeting"] == "one"


async def test_resumed_create_installs_again_over_its_own_failed_release(
    adapter: HelmAdapter, package: PackageInfo, k8s_emulator: KubernetesEmulator
) -> None:
    # The API server refuses the Deployment once: Helm records the install as failed.
    k8s_emulator.faults.error(
        500, path=f"/apis/apps/v1/namespaces/{NS}/deployments*", method="PATCH", times=1
    )
    failed = await adapter.create_deployment(spec(package, "again"), ctx("create-f"))
    assert failed.status is DeploymentStatus.FAILED, failed
    assert failed.message and "500" in failed.message
    assert release_records(k8s_emulator, "again", NS) == [(1, "failed")]

    retried = await adapter.create_deployment(spec(package, "again"), ctx("create-f", 2))
    assert (retried.status, retried.revision) == (DeploymentStatus.DEPLOYED, 1)
    assert release_records(k8s_emulator, "again", NS) == [(1, "deployed")]
    assert replicas(k8s_emulator, "again") == 1


async def test_scale_is_refused_up_front_when_the_chart_has_no_scale_key(
    adapter: HelmAdapter, package: PackageInfo, tmp_path: Path
) -> None:
    created = await adapter.create_deployment(spec(package, "sc"), ctx("c-sc"))
    await adapter.check_scale(created.backend_ref, 3)  # replicaCount is a chart default

    bare = await adapter.upload_package(
        upload_of(
            build_chart(
                tmp_path / "bare",
                "bare",
                "1.0.0",
                values={"greeting": "hello"},
                templates={"cm.yaml": CONFIGMAP},
            )
        )
    )
    plain = await adapter.create_deployment(spec(bare, "bare"), ctx("c-bare"))
    with pytest.raises(InvalidInput) as caught:
        await adapter.check_scale(plain.backend_ref, 3)
    assert caught.value.details["field"] == "replicas"
    assert "replicaCount" in caught.value.message
    assert (await adapter.get_deployment(plain.backend_ref)).revision == 1

    # The release's own values count too.
    given = await adapter.create_deployment(spec(bare, "given", replicaCount=1), ctx("c-given"))
    await adapter.check_scale(given.backend_ref, 2)


async def test_nested_scale_key(
    adapter_factory: AdapterFactory, k8s_kubeconfig: Path, tmp_path: Path
) -> None:
    adapter = await adapter_factory(
        {"cluster": {"kubeconfig": str(k8s_kubeconfig), "scaleKey": "deployment.replicas"}}
    )
    chart = build_chart(
        tmp_path / "n",
        "nested",
        "1.0.0",
        values={"deployment": {"replicas": 1}},
        templates={"cm.yaml": CONFIGMAP},
    )
    package = await adapter.upload_package(upload_of(chart))
    created = await adapter.create_deployment(spec(package, "nested"), ctx("c-n"))
    await adapter.check_scale(created.backend_ref, 2)
    flat = await adapter.create_deployment(spec(package, "flat", deployment="none"), ctx("c-flat"))
    with pytest.raises(InvalidInput) as caught:
        await adapter.check_scale(flat.backend_ref, 2)
    assert "deployment.replicas" in caught.value.message


async def test_timeout_leaves_no_unretrieved_exception_and_holds_the_release_until_helm_returns(
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    k8s_emulator: KubernetesEmulator,
    chart: Path,
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    adapter = await adapter_factory(
        {"cluster": {"kubeconfig": str(k8s_kubeconfig), "wait": "none"}, "timeouts": {"write": 1}},
        name="helm-hang",
    )
    hung = await adapter.upload_package(upload_of(chart))
    # Helm's release storage write ignores cancellation: the call outlives the gateway's wait.
    hang = k8s_emulator.faults.hang(path=f"/api/v1/namespaces/{NS}/secrets*", method="POST")
    started = time.monotonic()
    with pytest.raises(BackendTimeout):
        await adapter.create_deployment(spec(hung, "hung"), ctx("create-h"))
    assert time.monotonic() - started < 5  # the timeout, plus at most the unwind bound

    # The runner's retry comes at once; it waits for the abandoned call, not racing it.
    retry = asyncio.ensure_future(adapter.create_deployment(spec(hung, "hung"), ctx("create-h", 2)))
    await asyncio.sleep(0.5)
    assert not retry.done()
    hang.remove()
    info = await asyncio.wait_for(retry, 20)
    # The abandoned install ended failed (cancelled); the retry installed it again.
    assert (info.status, info.revision) == (DeploymentStatus.DEPLOYED, 1), info
    assert release_records(k8s_emulator, "hung", NS) == [(1, "deployed")]

    gc.collect()
    await asyncio.sleep(0.1)
    never = [c for c in reported if "never retrieved" in str(c.get("message"))]
    assert not never, never

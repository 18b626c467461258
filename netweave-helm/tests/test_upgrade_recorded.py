"""An upgrade from the gateway's record of the release (``OperationContext.known``): Helm's
latest revision is not read first, and a record Helm has moved past is caught by the revision
the upgrade made (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from conftest import AdapterFactory, upload_of
from netweave.adapters import DeploymentChange, KnownState, OperationContext, PackageInfo
from netweave.testing.k8s import KubernetesEmulator
from netweave_helm.adapter import HelmAdapter
from test_deployments import ctx, spec


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


def recorded(known: KnownState, attempt: int = 1) -> OperationContext:
    context = ctx(attempt=attempt)
    return OperationContext(
        operation_id=context.operation_id,
        idempotency_key=context.idempotency_key,
        attempt=attempt,
        known=known,
    )


def release_lists(k8s: KubernetesEmulator) -> int:
    """Lists of the release's stored revisions (Helm's storage Secrets of ``rel``)."""
    return sum(
        1
        for r in k8s.requests
        if r.method == "GET"
        and not r.watch
        and r.path == "/api/v1/namespaces/team-a/secrets"
        and "name%3Drel" in r.query
    )


def greeting(k8s: KubernetesEmulator) -> str:
    cm = k8s.get("v1", "ConfigMap", "rel-cfg", "team-a")
    assert cm is not None
    return str(cm["data"]["greeting"])


async def test_an_upgrade_from_the_record_does_not_read_helms_latest_revision_first(
    adapter: HelmAdapter, app_chart: PackageInfo, k8s_emulator: KubernetesEmulator
) -> None:
    created = await adapter.create_deployment(spec(app_chart, greeting="hi", tag="1"), ctx())
    known = KnownState(revision=1, package=app_chart, values={"greeting": "hi", "tag": "1"})
    k8s_emulator.clear_requests()
    info = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"greeting": "hello"}), recorded(known)
    )
    assert (info.revision, info.values) == (2, {"greeting": "hello", "tag": "1"})
    assert greeting(k8s_emulator) == "hello"
    # Helm's upgrade reads the latest revision itself; the adapter's own read before it
    # (a second list) is gone: one GET of the next revision's storage object instead.
    assert release_lists(k8s_emulator) == 1

    # A retried attempt reads Helm first (what the interrupted one left decides).
    k8s_emulator.clear_requests()
    again = KnownState(revision=2, package=app_chart, values=info.values or {})
    retried = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"tag": "2"}), recorded(again, attempt=2)
    )
    assert (retried.revision, retried.values) == (3, {"greeting": "hello", "tag": "2"})
    assert release_lists(k8s_emulator) == 2


async def test_a_record_helm_moved_past_is_caught_before_the_upgrade(
    adapter: HelmAdapter, app_chart: PackageInfo, k8s_emulator: KubernetesEmulator
) -> None:
    created = await adapter.create_deployment(spec(app_chart, greeting="hi", tag="1"), ctx())
    # Behind the record's back: revision 2 holds other values (the record still says 1).
    behind = await adapter.update_deployment(
        created.backend_ref,
        DeploymentChange(values={"greeting": "behind", "tag": "x"}, values_mode="replace"),
        ctx(),
    )
    assert behind.revision == 2
    stale = KnownState(revision=1, package=app_chart, values={"greeting": "hi", "tag": "1"})
    info = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"tag": "2"}), recorded(stale)
    )
    # Merged onto what Helm held (revision 2), read first as before: one revision, and the
    # record's stale values are not what the release holds at any moment.
    assert (info.revision, info.values) == (3, {"greeting": "behind", "tag": "2"})
    assert greeting(k8s_emulator) == "behind"
    latest = await adapter.get_deployment(created.backend_ref)
    assert (latest.revision, latest.values) == (3, info.values)


async def test_a_revision_made_between_the_check_and_the_upgrade_is_caught_after_it(
    adapter: HelmAdapter,
    app_chart: PackageInfo,
    k8s_emulator: KubernetesEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await adapter.create_deployment(spec(app_chart, greeting="hi", tag="1"), ctx())
    behind = await adapter.update_deployment(
        created.backend_ref,
        DeploymentChange(values={"greeting": "behind", "tag": "x"}, values_mode="replace"),
        ctx(),
    )
    assert behind.revision == 2

    async def not_seen(*_: object) -> bool:  # revision 2 made right after the check
        return False

    monkeypatch.setattr(HelmAdapter, "_moved_past", not_seen)
    stale = KnownState(revision=1, package=app_chart, values={"greeting": "hi", "tag": "1"})
    info = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"tag": "2"}), recorded(stale)
    )
    # The upgrade made revision 3, not 2: the revision it replaced held other values, so
    # what a read of Helm first would have deployed is upgraded to at once (revision 4).
    assert (info.revision, info.values) == (4, {"greeting": "behind", "tag": "2"})
    assert greeting(k8s_emulator) == "behind"
    latest = await adapter.get_deployment(created.backend_ref)
    assert (latest.revision, latest.values) == (4, info.values)

    # A stale record whose values Helm still holds: the upgrade is kept (one revision).
    same = KnownState(revision=1, package=app_chart, values=dict(info.values or {}))
    kept = await adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"tag": "3"}), recorded(same)
    )
    assert (kept.revision, kept.values) == (5, {"greeting": "behind", "tag": "3"})

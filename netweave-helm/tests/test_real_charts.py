"""Each real-world chart: upload, preview, install into the emulator, upgrade, roll back,
uninstall — with the real Helm SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import REAL_CHARTS, AdapterFactory, upload_of
from netweave.adapters import DeploymentChange, DeploymentSpec, OperationContext
from netweave.errors import NotFound
from netweave.models import DeploymentStatus
from netweave.testing.k8s import MULTUS_CRD, KubernetesEmulator
from netweave_helm.adapter import resources_of
from test_manifest_resources import read_whole

#: Per chart: install values, an upgrade's values, and what the cluster must provide first.
PLANS: dict[str, dict[str, Any]] = {
    "hello-world-0.1.0.tgz": {"upgrade": {"replicaCount": 2}},
    "nginx-21.1.23.tgz": {"upgrade": {"replicaCount": 2}},
    "traefik-41.3.0.tgz": {"upgrade": {"deployment": {"replicas": 2}}},
    # Without a backup location the chart would create a BackupStorageLocation whose empty
    # credential is null, which an API server with the CRD's schema refuses.
    "velero-12.1.0.tgz": {
        "install": {"backupsEnabled": False, "snapshotsEnabled": False},
        "upgrade": {"podLabels": {"tier": "backup"}},
    },
    # Its objects are hard-wired into the RIC namespaces, which RIC operators create first.
    "infrastructure-3.0.0.tgz": {
        "namespaces": ["ricinfra", "ricplt", "ricxapp"],
        "upgrade": {"env": {"x": "y"}},
    },
    "free5gc-1.1.7.tgz": {"crds": [MULTUS_CRD], "upgrade": {"deployWebui": False}},
}


@pytest.mark.parametrize("filename", sorted(REAL_CHARTS))
async def test_real_chart_full_lifecycle(
    filename: str,
    charts_dir: Path,
    adapter_factory: AdapterFactory,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    plan = PLANS[filename]
    for crd in plan.get("crds", []):
        k8s_emulator.install_crd(crd)
    for namespace in plan.get("namespaces", []):
        k8s_emulator.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    adapter = await adapter_factory({"cluster": {"kubeconfig": str(k8s_kubeconfig)}})

    package = await adapter.upload_package(upload_of(charts_dir / filename))
    assert package.checksum == f"sha256:{REAL_CHARTS[filename]}"
    name = package.name[:20].rstrip("-") + "-rel"
    install_values = dict(plan.get("install", {}))
    target = DeploymentSpec(
        deployment_id=f"dep-{name}",
        name=name,
        namespace="nf-" + package.name[:20].rstrip("-"),
        package=package,
        values=install_values,
    )

    preview = await adapter.preview_deployment(target)
    assert preview.manifests
    assert all(m.strip() for m in preview.manifests.values())
    # Resources named from each document's headline, as read whole (see
    # test_manifest_resources): here on every real chart's rendering.
    rendered = "\n---\n".join(preview.manifests.values())
    named = [(r.kind, r.name, r.namespace) for r in resources_of(rendered, target.namespace)]
    assert named and named == read_whole(rendered, target.namespace)
    with pytest.raises(NotFound):
        await adapter.get_deployment(f"{target.namespace}/{name}")

    created = await adapter.create_deployment(target, OperationContext("op-1", "key-1"))
    assert created.status is DeploymentStatus.DEPLOYED, created.message
    assert created.revision == 1
    assert created.package_version == package.version
    assert created.resources

    upgraded = await adapter.update_deployment(
        created.backend_ref,
        DeploymentChange(values=plan["upgrade"]),
        OperationContext("op-2", "key-2"),
    )
    assert upgraded.status is DeploymentStatus.DEPLOYED, upgraded.message
    assert upgraded.revision == 2
    assert upgraded.values == {**install_values, **plan["upgrade"]}

    rolled = await adapter.rollback_deployment(
        created.backend_ref, 0, OperationContext("op-3", "key-3")
    )
    assert rolled.status is DeploymentStatus.DEPLOYED, rolled.message
    assert rolled.revision == 3
    assert rolled.values == install_values

    history = await adapter.get_history(created.backend_ref)
    assert [h.status for h in history] == ["SUPERSEDED", "SUPERSEDED", "DEPLOYED"]

    await adapter.delete_deployment(created.backend_ref, OperationContext("op-4", "key-4"))
    with pytest.raises(NotFound):
        await adapter.get_deployment(created.backend_ref)
    assert not k8s_emulator.list(
        "v1", "Secret", target.namespace, label_selector=f"owner=helm,name={name}"
    )

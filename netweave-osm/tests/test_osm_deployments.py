"""NS instance lifecycle through the adapter's public methods against the NBI emulator."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import (
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import BackendError, BackendTimeout, Conflict, InvalidInput, NotFound
from netweave.models import DeploymentStatus
from netweave.testing.polling import until
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_helpers import make_config
from osm_packages import archive, knf_vnfd, nsd, vnf_vnfd

_ops = itertools.count(1)


def ctx(key: str | None = None) -> OperationContext:
    n = next(_ops)
    return OperationContext(operation_id=f"op-{n}", idempotency_key=key or f"op-{n}:0")


def spec(
    package: PackageInfo, name: str = "ldap1", values: dict[str, Any] | None = None
) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}",
        name=name,
        namespace="ran",
        package=package,
        values=values or {},
    )


@pytest.fixture
async def ns_package(
    adapter: OsmAdapter, knf_upload: PackageUpload, ns_upload: PackageUpload
) -> PackageInfo:
    await adapter.upload_package(knf_upload)
    return await adapter.upload_package(ns_upload)


@pytest.fixture
async def deployed(adapter: OsmAdapter, ns_package: PackageInfo) -> DeploymentInfo:
    return await adapter.create_deployment(spec(ns_package, values={"replicaCount": 1}), ctx())


async def test_instantiate_passes_values_to_the_kdu(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    assert deployed.status is DeploymentStatus.DEPLOYED
    assert deployed.values == {"replicaCount": 1}
    assert deployed.revision == 1
    nsr = emulator.nsrs[deployed.backend_ref]
    assert nsr["name"] == "ldap1" and nsr["nsState"] == "READY"
    params = nsr["instantiate_params"]
    assert params["vimAccountId"] == emulator.vim_id  # resolved from the name "k8s-vim"
    assert params["additionalParamsForVnf"] == [
        {
            "member-vnf-index": "ldap",
            "additionalParamsForKdu": [
                {
                    "kdu_name": "ldap",
                    "k8s-namespace": "ran",
                    "additionalParams": {"replicaCount": 1},
                }
            ],
        }
    ]
    # The Helm release the LCM made carries the values.
    assert emulator.helm[deployed.backend_ref]["ldap/ldap"] == [{"replicaCount": 1}]
    assert [r.kind for r in deployed.resources] == ["KDU"]
    assert deployed.resources[0].namespace == "ran" and deployed.resources[0].ready
    assert deployed.extensions["kduModels"] == {"ldap": "bitnami/openldap:1.2.7"}


async def test_update_values_merge_and_replace(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    ref = deployed.backend_ref
    merged = await adapter.update_deployment(
        ref, DeploymentChange(values={"image": {"tag": "2.6"}}), ctx()
    )
    assert merged.values == {"replicaCount": 1, "image": {"tag": "2.6"}}
    assert merged.revision == 2 and merged.status is DeploymentStatus.DEPLOYED
    replaced = await adapter.update_deployment(
        ref, DeploymentChange(values={"image": {"tag": "2.7"}}, values_mode="replace"), ctx()
    )
    assert replaced.values == {"image": {"tag": "2.7"}}
    # What Helm got: the full values each time, through the KDU upgrade primitive.
    assert emulator.helm[ref]["ldap/ldap"][-1] == {"image": {"tag": "2.7"}}
    actions = [o for o in emulator.ops.values() if o["lcmOperationType"] == "action"]
    assert {o["operationParams"]["primitive"] for o in actions} == {"upgrade"}
    assert all(o["operationParams"]["kdu_name"] == "ldap" for o in actions)


async def test_scale_helm_kdu_sets_the_replica_value(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    scaled = await adapter.scale_deployment(deployed.backend_ref, 3, ctx())
    assert scaled.values == {"replicaCount": 3}
    assert emulator.helm[deployed.backend_ref]["ldap/ldap"][-1] == {"replicaCount": 3}


async def test_rollback_returns_to_the_previous_helm_revision(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    ref = deployed.backend_ref
    with pytest.raises(InvalidInput, match="nothing to roll back"):
        await adapter.rollback_deployment(ref, 0, ctx())
    await adapter.update_deployment(ref, DeploymentChange(values={"replicaCount": 2}), ctx())
    with pytest.raises(InvalidInput, match="previous revision only: revision 1"):
        await adapter.rollback_deployment(ref, 7, ctx())
    back = await adapter.rollback_deployment(ref, 1, ctx())
    assert back.values == {"replicaCount": 1}
    assert back.revision == 3 and back.status is DeploymentStatus.DEPLOYED
    assert emulator.helm[ref]["ldap/ldap"] == [
        {"replicaCount": 1},
        {"replicaCount": 2},
        {"replicaCount": 1},
    ]
    # Helm semantics: rolling back again returns to the revision before the rollback.
    again = await adapter.rollback_deployment(ref, 0, ctx())
    assert again.values == {"replicaCount": 2}


async def test_history_lists_every_operation(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    ref = deployed.backend_ref
    await adapter.update_deployment(ref, DeploymentChange(values={"replicaCount": 2}), ctx())
    emulator.plan("action", "FAILED", "helm upgrade failed: timed out", primitive="upgrade")
    with pytest.raises(BackendError):
        await adapter.update_deployment(ref, DeploymentChange(values={"replicaCount": 9}), ctx())
    history = await adapter.get_history(ref)
    assert [(e.revision, e.status) for e in history] == [
        (1, "COMPLETED"),
        (2, "COMPLETED"),
        (3, "FAILED"),
    ]
    assert history[0].description == "instantiate: Done"
    assert history[2].description and "helm upgrade failed" in history[2].description
    # A failed upgrade changed nothing: the values stay those of revision 2.
    assert history[2].values == {"replicaCount": 2}
    assert all(e.package_version == "1.0" for e in history)


async def test_failed_upgrade_reports_failed_with_the_reason(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    emulator.plan(
        "action", "FAILED", "Error: UPGRADE FAILED: timed out waiting", primitive="upgrade"
    )
    with pytest.raises(BackendError, match="UPGRADE FAILED") as caught:
        await adapter.update_deployment(
            deployed.backend_ref, DeploymentChange(values={"replicaCount": 5}), ctx()
        )
    assert caught.value.details["operationState"] == "FAILED"
    info = await adapter.get_deployment(deployed.backend_ref)
    assert info.status is DeploymentStatus.FAILED
    assert info.message and "UPGRADE FAILED" in info.message
    assert info.values == {"replicaCount": 1}


async def test_terminate_and_delete(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo, ns_package: PackageInfo
) -> None:
    ref = deployed.backend_ref
    await adapter.delete_deployment(ref, ctx())
    assert ref not in emulator.nsrs
    # Terminated first (tracked as an operation), then the record deleted.
    assert emulator.count("POST", f"/ns_instances/{ref}/terminate") == 1
    assert emulator.count("DELETE", f"/ns_instances_content/{ref}") == 1
    with pytest.raises(NotFound):
        await adapter.get_deployment(ref)
    await adapter.delete_deployment(ref, ctx())  # a retried delete is a no-op
    # The NS descriptor is free again.
    await adapter.delete_package(ns_package.backend_ref)


async def test_failed_termination_is_reported(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    emulator.plan("terminate", "FAILED", "VIM unreachable while deleting")
    with pytest.raises(BackendError, match="VIM unreachable"):
        await adapter.delete_deployment(deployed.backend_ref, ctx())
    info = await adapter.get_deployment(deployed.backend_ref)
    assert info.status is DeploymentStatus.FAILED
    # The next attempt succeeds.
    await adapter.delete_deployment(deployed.backend_ref, ctx())
    assert deployed.backend_ref not in emulator.nsrs


async def test_failed_instantiation_is_reported_and_cleaned_up(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.plan("instantiate", "FAILED", "KDU ldap: helm install failed: image pull back-off")
    with pytest.raises(BackendError, match="image pull back-off") as caught:
        await adapter.create_deployment(spec(ns_package), ctx())
    assert caught.value.details["operationState"] == "FAILED"
    # The gateway keeps no deployment for a failed create: the broken NS is not left in OSM.
    assert emulator.nsrs == {}
    ref = caught.value.details["backendRef"]
    assert emulator.count("POST", f"/ns_instances/{ref}/terminate") == 1
    with pytest.raises(NotFound):
        await adapter.get_deployment(ref)


async def test_broken_ns_reports_failed(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    # OSM marks an NS BROKEN when an operation breaks it; a later success does not hide that.
    emulator.nsrs[deployed.backend_ref]["nsState"] = "BROKEN"
    info = await adapter.get_deployment(deployed.backend_ref)
    assert info.status is DeploymentStatus.FAILED


async def test_partially_completed_instantiation_is_degraded(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.plan("instantiate", "PARTIALLY_COMPLETED", "day-1 primitive failed on one VNF")
    info = await adapter.create_deployment(spec(ns_package), ctx())
    assert info.status is DeploymentStatus.DEGRADED
    assert info.backend_status == "nsState=DEGRADED; instantiate PARTIALLY_COMPLETED"


async def test_failed_temp_is_failed(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    emulator.plan("action", "FAILED_TEMP", "LCM restarted", primitive="upgrade")
    with pytest.raises(BackendError, match="FAILED_TEMP"):
        await adapter.scale_deployment(deployed.backend_ref, 2, ctx())
    assert (await adapter.get_deployment(deployed.backend_ref)).status is DeploymentStatus.FAILED


async def test_status_while_operations_run(
    emulator: OsmNbiEmulator, adapter: OsmAdapter, ns_package: PackageInfo
) -> None:
    emulator.op_duration = 0.6
    create = asyncio.create_task(adapter.create_deployment(spec(ns_package), ctx()))
    seen: set[DeploymentStatus] = set()
    for _ in range(100):
        await asyncio.sleep(0.02)
        if emulator.nsrs:
            ref = next(iter(emulator.nsrs))
            seen.add((await adapter.get_deployment(ref)).status)
        if create.done():
            break
    info = await create
    assert DeploymentStatus.DEPLOYING in seen
    assert info.status is DeploymentStatus.DEPLOYED
    # A busy NS refuses another change instead of queueing it behind the gateway's back.
    upgrade = asyncio.create_task(
        adapter.update_deployment(info.backend_ref, DeploymentChange(values={"a": 1}), ctx())
    )
    await until(
        lambda: any(o["lcmOperationType"] == "action" for o in emulator.ops.values()), every=0.01
    )
    with pytest.raises(Conflict, match="busy"):
        await adapter.rollback_deployment(info.backend_ref, 0, ctx())
    await upgrade
    delete = asyncio.create_task(adapter.delete_deployment(info.backend_ref, ctx()))
    seen.clear()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if delete.done():
            break
        try:
            seen.add((await adapter.get_deployment(info.backend_ref)).status)
        except NotFound:
            break
    await delete
    assert DeploymentStatus.DELETING in seen


async def test_slow_operation_hits_the_write_timeout(
    emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.op_duration = 5.0
    slow = OsmAdapter(
        "osm-slow", make_config(emulator, timeouts={"read": 5, "write": 0.5}, pollingInterval=0.1)
    )
    await slow.start()
    try:
        with pytest.raises(BackendTimeout):
            await slow.create_deployment(spec(ns_package, name="slow"), ctx())
    finally:
        await slow.stop()


async def test_retried_create_does_not_create_a_second_ns(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    first = await adapter.create_deployment(spec(ns_package), ctx("create-dep-1:0"))
    again = await adapter.create_deployment(spec(ns_package), ctx("create-dep-1:0"))
    assert again.backend_ref == first.backend_ref
    assert len(emulator.nsrs) == 1
    assert emulator.count("POST", "/ns_instances_content") == 1
    # Another operation with the same name is a different deployment, even when its key
    # starts with the first one's.
    other = await adapter.create_deployment(spec(ns_package), ctx("create-dep-1"))
    assert other.backend_ref != first.backend_ref
    assert len(emulator.nsrs) == 2


async def test_retried_create_while_first_attempt_still_runs(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.op_duration = 0.4
    first = asyncio.create_task(adapter.create_deployment(spec(ns_package), ctx("k-run:0")))
    await until(lambda: len(emulator.nsrs) == 1, every=0.01)
    second = await adapter.create_deployment(spec(ns_package), ctx("k-run:0"))
    assert (await first).backend_ref == second.backend_ref
    assert second.status is DeploymentStatus.DEPLOYED
    assert len(emulator.nsrs) == 1


async def test_retried_create_after_a_failure_starts_clean(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.plan("instantiate", "FAILED", "no capacity")
    emulator.plan("terminate", "FAILED", "VIM timeout")  # so the failed NS stays behind
    with pytest.raises(BackendError, match="no capacity"):
        await adapter.create_deployment(spec(ns_package), ctx("k-fail:0"))
    (left,) = emulator.nsrs.values()
    assert left["nsState"] == "BROKEN"
    info = await adapter.create_deployment(spec(ns_package), ctx("k-fail:0"))
    assert left["_id"] not in emulator.nsrs
    assert info.status is DeploymentStatus.DEPLOYED
    assert list(emulator.nsrs) == [info.backend_ref]


async def test_deploying_a_vnf_package_is_invalid(
    adapter: OsmAdapter, knf_upload: PackageUpload
) -> None:
    vnf = await adapter.upload_package(knf_upload)
    with pytest.raises(InvalidInput, match="NS descriptors"):
        await adapter.create_deployment(spec(vnf), ctx())


async def test_upgrade_kdu_chart_through_a_new_package(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo, tmp_path: Path
) -> None:
    # OSM keys descriptors by id, so the newer version is a package of its own.
    await adapter.upload_package(
        PackageUpload(
            name="ldap-knf-v2",
            version="2.0",
            archive=archive(
                tmp_path, knf_vnfd("ldap-knf-v2", {"ldap": "bitnami/openldap:1.3.0"}, "2.0")
            ),
        )
    )
    newer = await adapter.upload_package(
        PackageUpload(
            name="ldap-ns-v2",
            version="2.0",
            archive=archive(tmp_path, nsd("ldap-ns-v2", {"ldap": "ldap-knf-v2"}, "2.0")),
        )
    )
    info = await adapter.update_deployment(
        deployed.backend_ref, DeploymentChange(package=newer), ctx()
    )
    assert info.extensions["kduModels"] == {"ldap": "bitnami/openldap:1.3.0"}
    # The NS now runs the newer package's chart: it reports that package.
    assert info.package_version == "2.0"
    assert info.extensions["packageRef"] == newer.backend_ref
    assert info.values == {"replicaCount": 1}, "values are kept across a chart upgrade"
    k8s = emulator.nsrs[deployed.backend_ref]["_admin"]["deployed"]["K8s"]
    assert k8s[0]["kdu-model"] == "bitnami/openldap:1.3.0"
    action = [o for o in emulator.ops.values() if o["lcmOperationType"] == "action"][-1]
    assert action["operationParams"]["primitive_params"] == {
        "replicaCount": 1,
        "kdu_model": "bitnami/openldap:1.3.0",
    }


async def test_several_kdus_take_values_by_name(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, tmp_path: Path
) -> None:
    await adapter.upload_package(
        PackageUpload(
            name="cu",
            version="1.0",
            archive=archive(
                tmp_path, knf_vnfd("cu-knf", {"cucp": "oran/cucp:1.0", "cuup": "oran/cuup:1.0"})
            ),
        )
    )
    package = await adapter.upload_package(
        PackageUpload(
            name="cu-ns", version="1.0", archive=archive(tmp_path, nsd("cu-ns", {"cu": "cu-knf"}))
        )
    )
    with pytest.raises(InvalidInput, match="keyed by KDU name"):
        await adapter.create_deployment(spec(package, "cu1", {"replicaCount": 2}), ctx())
    info = await adapter.create_deployment(
        spec(package, "cu1", {"cucp": {"replicaCount": 2}}), ctx()
    )
    assert info.values == {"cucp": {"replicaCount": 2}, "cuup": {}}
    info = await adapter.update_deployment(
        info.backend_ref, DeploymentChange(values={"cuup": {"logLevel": "debug"}}), ctx()
    )
    assert info.values == {"cucp": {"replicaCount": 2}, "cuup": {"logLevel": "debug"}}
    # Only the KDU whose values changed was upgraded.
    actions = [o for o in emulator.ops.values() if o["lcmOperationType"] == "action"]
    assert [o["operationParams"]["kdu_name"] for o in actions] == ["cuup"]
    with pytest.raises(InvalidInput, match="several KDUs"):
        await adapter.scale_deployment(info.backend_ref, 2, ctx())


async def test_scale_by_descriptor_aspect(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, tmp_path: Path
) -> None:
    await adapter.upload_package(
        PackageUpload(name="s", version="2.1", archive=archive(tmp_path, vnf_vnfd("scaler-vnf")))
    )
    package = await adapter.upload_package(
        PackageUpload(
            name="s-ns",
            version="1",
            archive=archive(tmp_path, nsd("scaler-ns", {"1": "scaler-vnf"})),
        )
    )
    info = await adapter.create_deployment(spec(package, "scaler", {"site": "edge-1"}), ctx())
    assert info.values == {"site": "edge-1"}
    assert emulator.nsrs[info.backend_ref]["instantiate_params"]["additionalParamsForNs"] == {
        "site": "edge-1"
    }
    out = await adapter.scale_deployment(info.backend_ref, 3, ctx())
    assert out.extensions["scaleLevels"] == {"vdu-autoscale": 2}
    scale_ops = [o for o in emulator.ops.values() if o["lcmOperationType"] == "scale"]
    assert [o["operationParams"]["scaleVnfData"]["scaleVnfType"] for o in scale_ops] == [
        "SCALE_OUT",
        "SCALE_OUT",
    ]
    back = await adapter.scale_deployment(info.backend_ref, 2, ctx())
    assert back.extensions["scaleLevels"] == {"vdu-autoscale": 1}
    with pytest.raises(InvalidInput, match="between 1 and 4"):
        await adapter.scale_deployment(info.backend_ref, 5, ctx())
    with pytest.raises(InvalidInput, match="between 1 and 4"):
        await adapter.scale_deployment(info.backend_ref, 0, ctx())
    # Values and rollback are Helm things: a VM-based NS refuses them clearly.
    with pytest.raises(InvalidInput, match="no KDUs"):
        await adapter.rollback_deployment(info.backend_ref, 0, ctx())


async def test_delete_resumes_an_interrupted_termination(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, deployed: DeploymentInfo
) -> None:
    emulator.op_duration = 0.5
    ref = deployed.backend_ref
    first = asyncio.create_task(adapter.delete_deployment(ref, ctx()))
    await until(
        lambda: any(o["lcmOperationType"] == "terminate" for o in emulator.ops.values()), every=0.01
    )
    first.cancel()  # the gateway died while OSM was terminating
    with pytest.raises(asyncio.CancelledError):
        await first
    await adapter.delete_deployment(ref, ctx("retry"))
    assert ref not in emulator.nsrs
    assert emulator.count("POST", f"/ns_instances/{ref}/terminate") == 1


async def test_knf_needs_a_k8s_cluster_on_the_vim(
    adapter: OsmAdapter, emulator: OsmNbiEmulator, ns_package: PackageInfo
) -> None:
    emulator.k8s_clusters.clear()
    with pytest.raises(BackendError, match="No k8scluster with type 'helm-chart-v3'"):
        await adapter.create_deployment(spec(ns_package), ctx())
    assert emulator.nsrs == {}

"""Live health and drift through the gateway's HTTP API with the OSM adapter: the reconciler
polls the strict OSM NBI emulator while the test changes the NS instance behind the gateway's
back — LCM finds it broken, someone upgrades its KDU or deletes it in OSM directly — and a
subscriber on loopback receives the events. What OSM holds is checked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.testing.etsi_notify import CallbackSink, callback_sink
from netweave.testing.gateway import (
    TERMINAL_OPERATION_STATES,
    GatewayClient,
    gateway_settings,
    running_gateway,
)
from netweave.testing.reconcile import (
    DEPLOYMENTS,
    events,
    fast_polling,
    notified,
    recorded_until,
    stored,
    subscribe,
)
from osm_emulator import OsmNbiEmulator
from osm_packages import archive, knf_vnfd, nsd

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with callback_sink() as server:
        yield server


@pytest.fixture
async def gw(emulator: OsmNbiEmulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "osm-lab",
                "type": "osm",
                "default": True,
                "config": {
                    "nbiUrl": emulator.url,
                    "username": emulator.username,
                    "password": emulator.password,
                    "vimAccount": "k8s-vim",
                    "pollingInterval": 0.02,
                    "http": {"retries": 0, "backoff": 0},
                    "timeouts": {"read": 0.5, "write": 20},
                },
            }
        ],
    )
    fast_polling(settings)
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def deploy(gw: GatewayClient, emulator: OsmNbiEmulator, tmp_path: Path) -> str:
    vnf_archive = archive(tmp_path, knf_vnfd("ldap-knf", {"ldap": "bitnami/openldap:1.2.7"}))
    ns_archive = archive(tmp_path, nsd("ldap-ns", {"ldap": "ldap-knf"}))
    package_ids = []
    for name, path, kind in (("ldap-knf", vnf_archive, "vnfd"), ("ldap-ns", ns_archive, "nsd")):
        response = await gw.post(
            PACKAGES,
            data={"name": name, "artifactVersion": "1.0", "packageType": kind},
            files={"package": (path.name, path.read_bytes(), "application/gzip")},
        )
        assert response.status_code == 201, response.text
        package_ids.append(response.json()["packageId"])
    response = await gw.post(
        DEPLOYMENTS,
        json={
            "name": "ldap1",
            "namespace": "ran",
            "packageId": package_ids[1],
            "values": {"replicaCount": 1},
        },
    )
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert operation["state"] == "COMPLETED", operation
    deployment_id = str(response.json()["deploymentId"])
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    return deployment_id


def ns_id_of(emulator: OsmNbiEmulator) -> str:
    (ns_id,) = emulator.nsrs
    return str(ns_id)


async def test_an_ns_instance_lcm_finds_broken_is_failed_and_notified(
    gw: GatewayClient, emulator: OsmNbiEmulator, sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, sink)
    report = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")).json()
    (kdu,) = report["resources"]
    assert (kdu["kind"], kdu["ready"]) == ("KDU", True), report

    emulator.break_ns(ns_id_of(emulator), "KDU ldap: pods in CrashLoopBackOff")
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")
    assert "CrashLoopBackOff" in (record["statusMessage"] or ""), record
    event = await notified(
        sink, "DeploymentHealthChanged", deployment_id, lambda e: e["data"]["status"] == "FAILED"
    )
    assert event["id"]
    report = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")).json()
    (kdu,) = report["resources"]
    assert (kdu["ready"], kdu["reason"]) == (False, "KduFailed"), report
    # OSM's NBI has no manifest diff: 501 with a problem body.
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}/diff")
    assert response.status_code == 501, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_kdu_upgraded_in_osm_directly_is_drift_and_the_repair_restores_the_values(
    gw: GatewayClient, emulator: OsmNbiEmulator, sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, sink)
    ns_id = ns_id_of(emulator)

    # `osm ns-action --action_name upgrade` by someone else, with other values.
    with emulator.lock:
        emulator.op_actionOnNSinstance(
            {"nsInstanceId": ns_id},
            {},
            {
                "member_vnf_index": "ldap",
                "kdu_name": "ldap",
                "primitive": "upgrade",
                "primitive_params": {"replicaCount": 5},
            },
            {},
        )
    record = await recorded_until(gw, deployment_id, lambda d: d["driftDetected"])
    changes = {d["change"] for d in record["drift"]["differences"]}
    assert {"revision", "values"} <= changes, record
    assert record["values"] == {"replicaCount": 1}  # the gateway's desired state is kept
    event = await notified(sink, "DeploymentDriftDetected", deployment_id)
    assert event["data"]["driftDetected"] is True

    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert (operation["operationType"], operation["state"]) == ("RECONCILE", "COMPLETED")
    assert emulator.helm[ns_id]["ldap/ldap"][-1] == {"replicaCount": 1}
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_an_ns_instance_deleted_in_osm_is_deleted_with_drift(
    gw: GatewayClient, emulator: OsmNbiEmulator, sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, sink)
    emulator.remove_ns(ns_id_of(emulator))
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DELETED")
    assert record["drift"]["differences"][0]["change"] == "uninstalled", record
    await notified(
        sink, "DeploymentHealthChanged", deployment_id, lambda e: e["data"]["status"] == "DELETED"
    )


async def test_nbi_refusing_or_hanging_during_polls_changes_nothing(
    gw: GatewayClient, emulator: OsmNbiEmulator, sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, sink)
    reconciler: Any = gw.app.state.services.reconciler
    before = await stored(gw, deployment_id)
    suffix = f"/ns_instances_content/{ns_id_of(emulator)}"

    with emulator.outage():
        start, gets = reconciler.stats.unreachable, emulator.count("GET", suffix)
        await asyncio.sleep(2.0)
        tried = emulator.count("GET", suffix) - gets
    # Polls every 0.3 s would be ~7 in 2 s; the back-off (0.3, 0.6, 1.2) leaves ~3.
    assert reconciler.stats.unreachable - start >= 2
    assert 2 <= tried <= 5, tried

    emulator.stall = 1.0  # past the adapter's 0.5 s read timeout
    start = reconciler.stats.unreachable
    await _until(lambda: reconciler.stats.unreachable > start, 10.0)
    emulator.stall = 0.0

    after = await stored(gw, deployment_id)
    for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
        assert after[key] == before[key], (key, before, after)
    assert events(sink, "DeploymentHealthChanged", deployment_id) == []
    assert events(sink, "DeploymentDriftDetected", deployment_id) == []
    emulator.break_ns(ns_id_of(emulator), "KDU ldap failed")
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")


async def _until(predicate: Any, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")

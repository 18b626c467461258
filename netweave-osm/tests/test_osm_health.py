"""Live health and drift through the gateway's HTTP API with the OSM adapter: the reconciler
polls the strict OSM NBI emulator while the test changes the NS instance behind the gateway's
back — LCM finds it broken, someone upgrades its KDU or deletes it in OSM directly — and a
subscriber on loopback receives the events. What OSM holds is checked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from netweave.testing.etsi_notify import CallbackSink
from netweave.testing.gateway import (
    TERMINAL_OPERATION_STATES,
    GatewayClient,
    gateway_settings,
    running_gateway,
)
from netweave.testing.polling import until
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
    (deployment_id,) = await deploy_many(gw, emulator, tmp_path, ["ldap1"])
    return deployment_id


async def deploy_many(
    gw: GatewayClient, emulator: OsmNbiEmulator, tmp_path: Path, names: list[str]
) -> list[str]:
    """One NS package onboarded, an NS instance of it per name, each recorded DEPLOYED."""
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
    ids = []
    for name in names:
        response = await gw.post(
            DEPLOYMENTS,
            json={
                "name": name,
                "namespace": "ran",
                "packageId": package_ids[1],
                "values": {"replicaCount": 1},
            },
        )
        assert response.status_code == 201, response.text
        operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
        assert operation["state"] == "COMPLETED", operation
        ids.append(str(response.json()["deploymentId"]))
    for deployment_id in ids:
        await recorded_until(gw, deployment_id, lambda d: d["status"] == "DEPLOYED")
    return ids


def ns_id_of(emulator: OsmNbiEmulator) -> str:
    (ns_id,) = emulator.nsrs
    return str(ns_id)


async def test_an_ns_instance_lcm_finds_broken_is_failed_and_notified(
    gw: GatewayClient, emulator: OsmNbiEmulator, notification_sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, notification_sink)
    report = (await gw.get(f"{DEPLOYMENTS}/{deployment_id}/status")).json()
    (kdu,) = report["resources"]
    assert (kdu["kind"], kdu["ready"]) == ("KDU", True), report

    emulator.break_ns(ns_id_of(emulator), "KDU ldap: pods in CrashLoopBackOff")
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")
    assert "CrashLoopBackOff" in (record["statusMessage"] or ""), record
    event = await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "FAILED",
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
    gw: GatewayClient, emulator: OsmNbiEmulator, notification_sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, notification_sink)
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
    event = await notified(notification_sink, "DeploymentDriftDetected", deployment_id)
    assert event["data"]["driftDetected"] is True

    response = await gw.post(f"{DEPLOYMENTS}/{deployment_id}/reconcile")
    assert response.status_code == 202, response.text
    operation = await gw.wait_operation(gw.operation_id(response), TERMINAL_OPERATION_STATES)
    assert (operation["operationType"], operation["state"]) == ("RECONCILE", "COMPLETED")
    assert emulator.helm[ns_id]["ldap/ldap"][-1] == {"replicaCount": 1}
    record = await stored(gw, deployment_id)
    assert (record["status"], record["driftDetected"]) == ("DEPLOYED", False), record


async def test_an_ns_instance_deleted_in_osm_is_deleted_with_drift(
    gw: GatewayClient, emulator: OsmNbiEmulator, notification_sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, notification_sink)
    emulator.remove_ns(ns_id_of(emulator))
    record = await recorded_until(gw, deployment_id, lambda d: d["status"] == "DELETED")
    assert record["drift"]["differences"][0]["change"] == "uninstalled", record
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        deployment_id,
        lambda e: e["data"]["status"] == "DELETED",
    )


async def test_nbi_refusing_or_hanging_during_polls_changes_nothing(
    gw: GatewayClient, emulator: OsmNbiEmulator, notification_sink: CallbackSink, tmp_path: Path
) -> None:
    deployment_id = await deploy(gw, emulator, tmp_path)
    await subscribe(gw, notification_sink)
    reconciler: Any = gw.app.state.services.reconciler
    before = await stored(gw, deployment_id)
    # A poll round is one list of the NS records (BATCH_READS).
    suffix = "/nslcm/v1/ns_instances_content"

    with emulator.outage():
        start, gets = reconciler.stats.unreachable, emulator.count("GET", suffix)
        await asyncio.sleep(2.0)
        tried = emulator.count("GET", suffix) - gets
    # Polls every 0.3 s would be ~7 in 2 s; the back-off (0.3, 0.6, 1.2) leaves ~3.
    assert reconciler.stats.unreachable - start >= 2
    assert 2 <= tried <= 5, tried

    emulator.stall = 1.0  # past the adapter's 0.5 s read timeout
    start = reconciler.stats.unreachable
    await until(lambda: reconciler.stats.unreachable > start, 10.0)
    emulator.stall = 0.0

    after = await stored(gw, deployment_id)
    for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
        assert after[key] == before[key], (key, before, after)
    assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []
    assert events(notification_sink, "DeploymentDriftDetected", deployment_id) == []
    emulator.break_ns(ns_id_of(emulator), "KDU ldap failed")
    await recorded_until(gw, deployment_id, lambda d: d["status"] == "FAILED")


def ns_of(emulator: OsmNbiEmulator, name: str) -> str:
    return next(ns_id for ns_id, nsr in emulator.nsrs.items() if nsr["name"] == name)


async def test_a_poll_round_reads_all_ns_instances_with_one_list(
    gw: GatewayClient, emulator: OsmNbiEmulator, notification_sink: CallbackSink, tmp_path: Path
) -> None:
    names = ["ldap1", "ldap2", "ldap3"]
    ids = dict(zip(names, await deploy_many(gw, emulator, tmp_path, names), strict=True))
    await subscribe(gw, notification_sink)
    ns = {name: ns_of(emulator, name) for name in names}
    lists, op_lists = "/nslcm/v1/ns_instances_content", "/nslcm/v1/ns_lcm_op_occs"

    def singles() -> int:
        return sum(emulator.count("GET", f"{lists}/{ns_id}") for ns_id in ns.values())

    start = (emulator.count("GET", lists), emulator.count("GET", op_lists), singles())
    await asyncio.sleep(1.5)
    seen = (
        emulator.count("GET", lists) - start[0],
        emulator.count("GET", op_lists) - start[1],
        singles() - start[2],
    )
    # Rounds every 0.3 s for 1.5 s: ~5 rounds for the three NS instances, each one NS list and
    # one filtered operations list; a read per NS would have been ~15 record GETs.
    assert 2 <= seen[0] <= 8, seen
    assert abs(seen[1] - seen[0]) <= 1, seen
    assert seen[2] == 0, seen

    # A change behind the gateway's back to one NS is seen through the list.
    emulator.break_ns(ns["ldap2"], "KDU ldap: pods in CrashLoopBackOff")
    record = await recorded_until(gw, ids["ldap2"], lambda d: d["status"] == "FAILED")
    assert "CrashLoopBackOff" in (record["statusMessage"] or ""), record
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        ids["ldap2"],
        lambda e: e["data"]["status"] == "FAILED",
    )
    # One NS deleted in OSM directly: missing from the list, it reads as gone.
    emulator.remove_ns(ns["ldap3"])
    record = await recorded_until(gw, ids["ldap3"], lambda d: d["status"] == "DELETED")
    assert record["drift"]["differences"][0]["change"] == "uninstalled", record
    assert ns["ldap3"] not in emulator.nsrs
    await notified(
        notification_sink,
        "DeploymentHealthChanged",
        ids["ldap3"],
        lambda e: e["data"]["status"] == "DELETED",
    )
    first = await stored(gw, ids["ldap1"])
    assert (first["status"], first["driftDetected"]) == ("DEPLOYED", False), first
    assert events(notification_sink, "DeploymentHealthChanged", ids["ldap1"]) == []


async def test_an_ns_list_answering_503_changes_nothing_and_is_backed_off(
    gw: GatewayClient, emulator: OsmNbiEmulator, notification_sink: CallbackSink, tmp_path: Path
) -> None:
    names = ["ldap1", "ldap2"]
    ids = await deploy_many(gw, emulator, tmp_path, names)
    await subscribe(gw, notification_sink)
    reconciler: Any = gw.app.state.services.reconciler
    before = {i: await stored(gw, i) for i in ids}
    lists = "/nslcm/v1/ns_instances_content"

    emulator.lists_unavailable = True
    try:
        start, listed = reconciler.stats.unreachable, emulator.count("GET", lists)
        # Behind the list, one NS breaks: nothing may be recorded while the list fails.
        emulator.break_ns(ns_of(emulator, "ldap1"), "KDU ldap failed")
        await asyncio.sleep(2.0)
        tried = emulator.count("GET", lists) - listed
        failed = reconciler.stats.unreachable - start
    finally:
        emulator.lists_unavailable = False
    # A failed round counts each deployment it was for unreachable. Reads every 0.3 s would
    # be ~7 per deployment in 2 s; the back-off (0.3, 0.6, 1.2) leaves at most 4. Each list
    # call is a round for one deployment or more.
    assert len(ids) <= failed <= 4 * len(ids), failed
    assert 2 <= tried <= failed, (tried, failed)
    for deployment_id in ids:
        after = await stored(gw, deployment_id)
        for key in ("status", "statusMessage", "driftDetected", "updatedAt"):
            assert after[key] == before[deployment_id][key], (key, before, after)
        assert events(notification_sink, "DeploymentHealthChanged", deployment_id) == []
    # The list answers again: the break is seen.
    await recorded_until(gw, ids[0], lambda d: d["status"] == "FAILED")
    assert (await stored(gw, ids[1]))["status"] == "DEPLOYED"

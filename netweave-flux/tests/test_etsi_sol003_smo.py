"""The standard SMO (``netweave.testing.etsi.StandardSmo``, the one the Helm adapter's SOL003 test
uses, written from the SOL003 contract only) drives ``/vnflcm/v2`` against the Flux adapter:
the gateway writes HelmReleases to the Kubernetes API emulator (the real Flux CRDs), where the
simulated helm-controller reconciles them into Deployments. Every request and response is
validated against the SOL003 V3.7.1 OpenAPI; at each step the test reads what the cluster holds
(the HelmRelease's spec and status history, the Deployment's replicas), not only the op-occ.

Packages are onboarded through the native ``/o2dms/v1`` face (a Helm repository chart);
their ``packageId`` is the ``vnfdId``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import flux_gateway_settings, shared_dir
from flux_sim import FluxSimulator
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import StandardSmo, sol003_vnflcm_contract
from netweave.testing.gateway import GatewayClient, running_gateway
from netweave.testing.k8s import KubernetesEmulator

NS = "apps"
RELEASE = "smo-app"
HELM = "helm.toolkit.fluxcd.io/v2"


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    return sol003_vnflcm_contract(shared_dir())


@pytest.fixture
async def gw(kubeconfig: Path, flux: FluxSimulator, tmp_path: Path) -> AsyncIterator[GatewayClient]:
    settings = flux_gateway_settings(tmp_path, kubeconfig)
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def onboard(gw: GatewayClient, version: str) -> str:
    response = await gw.post(
        "/o2dms/v1/nfDeploymentDescriptors",
        json={
            "name": "podinfo",
            "artifactVersion": version,
            "packageUri": "https://stefanprodan.github.io/podinfo",
            "packageType": "helm",
            "source": {"chart": "podinfo"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["packageId"])


def helmrelease(emulator: KubernetesEmulator) -> dict[str, Any] | None:
    return emulator.get(HELM, "HelmRelease", RELEASE, NS)


def held(emulator: KubernetesEmulator) -> tuple[str, Any, str]:
    """(chart version, replicaCount) the HelmRelease asks for, and the head of its history."""
    hr = helmrelease(emulator)
    assert hr is not None, "the HelmRelease is missing"
    history = (hr.get("status") or {}).get("history") or [{}]
    return (
        str(hr["spec"]["chart"]["spec"].get("version")),
        (hr["spec"].get("values") or {}).get("replicaCount"),
        f"{history[0].get('status')}@{history[0].get('chartVersion')}",
    )


def replicas(emulator: KubernetesEmulator) -> int:
    hr = helmrelease(emulator)
    assert hr is not None
    name = hr["spec"].get("releaseName") or f"{NS}-{RELEASE}"
    target = hr["spec"].get("targetNamespace") or NS
    deployment = emulator.get("apps/v1", "Deployment", name, target)
    assert deployment is not None, f"Deployment {target}/{name} is missing"
    return int(deployment["spec"]["replicas"])


async def instantiate(smo: StandardSmo, vnfd_id: str) -> str:
    created = await smo.call("POST", "/vnf_instances", {"vnfdId": vnfd_id, "vnfInstanceName": "x"})
    assert created.status_code == 201, created.text
    instance_id = str(created.json()["id"])
    op = await smo.task(
        f"/vnf_instances/{instance_id}/instantiate",
        {
            "flavourId": "default",
            "additionalParams": {
                "namespace": NS,
                "releaseName": RELEASE,
                "values": {"replicaCount": 1},
            },
        },
    )
    done = await smo.poll(op)
    assert (done["operation"], done["operationState"]) == ("INSTANTIATE", "COMPLETED"), done
    return instance_id


async def test_a_standard_smo_runs_the_lifecycle_on_flux(
    gw: GatewayClient,
    contract: ContractValidator,
    emulator: KubernetesEmulator,
    flux: FluxSimulator,
) -> None:
    smo = StandardSmo(gw, contract)
    v1 = await onboard(gw, "6.5.0")
    v2 = await onboard(gw, "6.6.0")

    instance_id = await instantiate(smo, v1)
    assert held(emulator) == ("6.5.0", 1, "deployed@6.5.0")
    assert replicas(emulator) == 1
    instance = await smo.instance(instance_id)
    assert instance["instantiationState"] == "INSTANTIATED"
    assert instance["instantiatedVnfInfo"]["scaleStatus"] == [
        {"aspectId": "default", "scaleLevel": 0}
    ]

    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale",
        {"type": "SCALE_OUT", "aspectId": "default", "numberOfSteps": 2},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert held(emulator) == ("6.5.0", 3, "deployed@6.5.0")
    assert replicas(emulator) == 3

    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale_to_level",
        {"scaleInfo": [{"aspectId": "default", "scaleLevel": 1}]},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(emulator) == 2
    info = (await smo.instance(instance_id))["instantiatedVnfInfo"]
    assert info["scaleStatus"] == [{"aspectId": "default", "scaleLevel": 1}]

    # change_vnfpkg: the HelmRelease moves to chart 6.6.0 and helm-controller upgrades.
    op = await smo.task(f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": v2})
    done = await smo.poll(op)
    assert (done["operation"], done["operationState"]) == ("CHANGE_VNFPKG", "COMPLETED"), done
    assert held(emulator) == ("6.6.0", 2, "deployed@6.6.0")
    assert ("upgrade", f"{NS}/{RELEASE}", "6.6.0") in flux.releases
    instance = await smo.instance(instance_id)
    assert (instance["vnfdId"], instance["vnfSoftwareVersion"]) == (v2, "6.6.0")

    # heal: the gateway asks Flux to reconcile the release again (a new requestedAt), and
    # helm-controller handles that request; what it holds is unchanged. (The adapter reads the
    # release's Ready condition, already True, so COMPLETED may come before Flux handled the
    # request: wait for it, bounded.)
    before = helmrelease(emulator)
    assert before is not None
    asked = before["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    op = await smo.task(f"/vnf_instances/{instance_id}/heal", {"cause": "drift"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    token, handled = asked, None
    for _ in range(100):  # bounded: 5 s
        after = helmrelease(emulator)
        assert after is not None
        token = after["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        handled = after["status"].get("lastHandledReconcileAt")
        if handled == token:
            break
        await asyncio.sleep(0.05)
    assert token != asked and handled == token, (asked, token, handled)
    assert held(emulator) == ("6.6.0", 2, "deployed@6.6.0")

    listed = await smo.call("GET", f"/vnf_lcm_op_occs?filter=(eq,vnfInstanceId,{instance_id})")
    assert [o["operation"] for o in listed.json()] == [
        "INSTANTIATE", "SCALE", "SCALE_TO_LEVEL", "CHANGE_VNFPKG", "HEAL"
    ]  # fmt: skip

    op = await smo.task(f"/vnf_instances/{instance_id}/terminate", {"terminationType": "FORCEFUL"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert helmrelease(emulator) is None
    assert f"{NS}/{RELEASE}" in flux.uninstalled
    instance = await smo.instance(instance_id)
    assert instance["instantiationState"] == "NOT_INSTANTIATED"
    deleted = await smo.call("DELETE", f"/vnf_instances/{instance_id}")
    assert deleted.status_code == 204, deleted.text
    assert (await smo.call("GET", f"/vnf_instances/{instance_id}")).status_code == 404


async def test_a_failed_change_on_flux_is_rolled_back_retried_or_given_up(
    gw: GatewayClient,
    contract: ContractValidator,
    emulator: KubernetesEmulator,
    flux: FluxSimulator,
) -> None:
    smo = StandardSmo(gw, contract)
    good = await onboard(gw, "6.5.0")
    broken = await onboard(gw, "6.7.0")
    flux.failing_chart_versions.add("6.7.0")
    instance_id = await instantiate(smo, good)

    # helm-controller's upgrade to 6.7.0 fails: FAILED_TEMP with Flux's words.
    op = await smo.task(f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": broken})
    failed = await smo.poll(op)
    assert failed["operationState"] == "FAILED_TEMP", failed
    assert {"retry", "rollback", "fail"} <= set(failed["_links"])
    got = (await smo.call("GET", f"{op}?all_fields")).json()
    assert "6.7.0" in got["error"]["detail"], got["error"]
    assert held(emulator)[0] == "6.7.0"  # the HelmRelease asks for it; Flux could not
    assert ("upgrade", f"{NS}/{RELEASE}", "6.7.0") in flux.releases
    blocked = await smo.call("POST", f"/vnf_instances/{instance_id}/heal", {})
    assert blocked.status_code == 409, blocked.text

    # rollback: the HelmRelease asks for 6.5.0 again and Flux runs it; ROLLED_BACK.
    response = await smo.call("POST", f"{op}/rollback")
    assert response.status_code == 202, response.text
    rolled = await smo.poll(op, frozenset({"ROLLED_BACK", "FAILED_TEMP"}))
    assert rolled["operationState"] == "ROLLED_BACK", rolled
    assert held(emulator)[::2] == ("6.5.0", "deployed@6.5.0")
    instance = await smo.instance(instance_id)
    assert (instance["vnfdId"], instance["vnfSoftwareVersion"]) == (good, "6.5.0")
    assert (await smo.call("POST", f"{op}/retry")).status_code == 409

    # retry while the chart still fails: FAILED_TEMP again, the release still not at 6.7.0 …
    op = await smo.task(f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": broken})
    assert (await smo.poll(op))["operationState"] == "FAILED_TEMP"
    response = await smo.call("POST", f"{op}/retry")
    assert response.status_code == 202, response.text
    again = await smo.poll(op, frozenset({"COMPLETED", "FAILED_TEMP"}))
    assert again["operationState"] == "FAILED_TEMP", again
    assert held(emulator)[0] == "6.7.0" and held(emulator)[2] != "deployed@6.7.0"

    # … then fail: FAILED (final); the instance takes tasks again and terminate removes it.
    response = await smo.call("POST", f"{op}/fail")
    assert response.status_code == 200, response.text
    assert response.json()["operationState"] == "FAILED"
    assert (await smo.call("POST", f"{op}/rollback")).status_code == 409
    op = await smo.task(f"/vnf_instances/{instance_id}/terminate", {"terminationType": "GRACEFUL"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert helmrelease(emulator) is None


async def test_a_retry_on_flux_makes_helm_controller_try_again(
    gw: GatewayClient,
    contract: ContractValidator,
    emulator: KubernetesEmulator,
    flux: FluxSimulator,
) -> None:
    smo = StandardSmo(gw, contract)
    good = await onboard(gw, "6.5.0")
    broken = await onboard(gw, "6.7.0")
    flux.failing_chart_versions.add("6.7.0")
    instance_id = await instantiate(smo, good)
    op = await smo.task(f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": broken})
    assert (await smo.poll(op))["operationState"] == "FAILED_TEMP"
    flux.failing_chart_versions.discard("6.7.0")  # the cause is fixed; the SMO retries
    response = await smo.call("POST", f"{op}/retry")
    assert response.status_code == 202, response.text
    done = await smo.poll(op, frozenset({"COMPLETED", "FAILED_TEMP"}), seconds=10)
    assert held(emulator)[2] == "deployed@6.7.0", held(emulator)
    assert done["operationState"] == "COMPLETED", done

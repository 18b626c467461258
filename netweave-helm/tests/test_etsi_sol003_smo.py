"""A standard SMO drives the gateway's ETSI face (SOL003 ``vnflcm/v2``) against the Helm adapter,
the real Helm SDK and the Kubernetes API emulator.

The SMO here (``netweave.testing.etsi.StandardSmo``, shared with the GitOps adapters' run) is
written only from the SOL003 contract: plain JSON over HTTP, no netweave models; every request
it sends and every response it gets is validated against the SOL003 V3.7.1 OpenAPI files
(``contracts/etsi/nfv-sol002-sol003``). At each step the test checks what
Helm's release storage and the emulated cluster hold, not only the op-occ's word.

Packages are onboarded through the native ``/o2dms/v1`` face (onboarding is out of the O2dms
ETSI profile's scope); their ``packageId`` is the stable ``vnfdId``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from chartkit import DEPLOYMENT, build_chart
from conftest import shared_dir
from killedhelm import release_records
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import StandardSmo, sol003_vnflcm_contract
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator

NS = "smo"
RELEASE = "app"
#: A Deployment whose replicas is a string: the API server refuses it, Helm's upgrade fails.
BROKEN_DEPLOYMENT = DEPLOYMENT.replace(
    "replicas: {{ .Values.replicaCount }}", 'replicas: "{{ .Values.replicaCount }}x"'
)


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    # The published OpenAPI with its two known defects corrected (netweave.testing.etsi).
    return sol003_vnflcm_contract(shared_dir())


@pytest.fixture
async def gw(tmp_path: Path, k8s_kubeconfig: Path) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "helm-local",
                "type": "helm",
                "default": True,
                "config": {
                    "storage": {"kind": "local"},
                    "cluster": {"kubeconfig": str(k8s_kubeconfig), "wait": "none"},
                    "timeouts": {"write": 20},
                },
            }
        ],
    )
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def onboard(gw: GatewayClient, archive: Path, name: str, version: str) -> str:
    with archive.open("rb") as handle:
        response = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["packageId"])


def chart(tmp_path: Path, version: str, tag: str, template: str = DEPLOYMENT) -> Path:
    return build_chart(
        tmp_path / f"charts-{version}",
        "smo-app",
        version,
        values={"replicaCount": 1, "tag": tag},
        templates={"deployment.yaml": template},
    )


def workload(k8s: KubernetesEmulator) -> dict[str, Any] | None:
    return k8s.get("apps/v1", "Deployment", f"{RELEASE}-app", NS)


def replicas(k8s: KubernetesEmulator) -> int:
    obj = workload(k8s)
    assert obj is not None, "the release's Deployment is missing"
    return int(obj["spec"]["replicas"])


def image(k8s: KubernetesEmulator) -> str:
    obj = workload(k8s)
    assert obj is not None
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_a_standard_smo_runs_the_whole_lifecycle(
    gw: GatewayClient, contract: ContractValidator, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    smo = StandardSmo(gw, contract)
    v1 = await onboard(gw, chart(tmp_path, "1.0.0", "1"), "smo-app", "1.0.0")
    v2 = await onboard(gw, chart(tmp_path, "1.1.0", "2"), "smo-app", "1.1.0")

    versions = await smo.call("GET", "/api_versions")
    assert versions.json()["apiVersions"] == [{"version": "2.3.0"}]

    # Create: a VNF instance that exists before instantiation.
    created = await smo.call(
        "POST", "/vnf_instances", {"vnfdId": v1, "vnfInstanceName": "app", "metadata": {"o": 1}}
    )
    assert created.status_code == 201, created.text
    instance = created.json()
    instance_id = instance["id"]
    assert created.headers["Location"].endswith(f"/vnflcm/v2/vnf_instances/{instance_id}")
    assert instance["instantiationState"] == "NOT_INSTANTIATED"
    assert (instance["vnfProductName"], instance["vnfSoftwareVersion"]) == ("smo-app", "1.0.0")
    assert "instantiate" in instance["_links"] and "terminate" not in instance["_links"]
    assert release_records(k8s_emulator, RELEASE, NS) == []

    # Instantiate: the Helm release appears, at scale level 0 of the derived aspect.
    op = await smo.task(
        f"/vnf_instances/{instance_id}/instantiate",
        {
            "flavourId": "default",
            "additionalParams": {"namespace": NS, "releaseName": RELEASE, "values": {"tag": "1"}},
        },
    )
    done = await smo.poll(op)
    assert (done["operation"], done["operationState"]) == ("INSTANTIATE", "COMPLETED"), done
    assert release_records(k8s_emulator, RELEASE, NS) == [(1, "deployed")]
    assert (replicas(k8s_emulator), image(k8s_emulator)) == (1, "example/app:1")
    instance = await smo.instance(instance_id)
    assert instance["instantiationState"] == "INSTANTIATED"
    info = instance["instantiatedVnfInfo"]
    assert info["scaleStatus"] == [{"aspectId": "default", "scaleLevel": 0}]
    kinds = {
        (v["computeResource"]["vimLevelResourceType"], v["vduId"]) for v in info["vnfcResourceInfo"]
    }
    assert ("Deployment", f"{RELEASE}-app") in kinds, kinds
    # Instantiated: it cannot be deleted (409), nor instantiated again (409).
    assert (await smo.call("DELETE", f"/vnf_instances/{instance_id}")).status_code == 409
    again = await smo.call(
        "POST", f"/vnf_instances/{instance_id}/instantiate", {"flavourId": "default"}
    )
    assert again.status_code == 409, again.text

    # Scale out by two steps, then to level 1: the Deployment's replicas follow.
    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale",
        {"type": "SCALE_OUT", "aspectId": "default", "numberOfSteps": 2},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(k8s_emulator) == 3
    assert release_records(k8s_emulator, RELEASE, NS)[-1] == (2, "deployed")
    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale_to_level",
        {"scaleInfo": [{"aspectId": "default", "scaleLevel": 1}]},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(k8s_emulator) == 2
    info = (await smo.instance(instance_id))["instantiatedVnfInfo"]
    assert info["scaleStatus"] == [{"aspectId": "default", "scaleLevel": 1}]
    # An aspect it does not have, or a level below 0: 400 (SOL003 has no 422 for scale).
    for body in (
        {"type": "SCALE_OUT", "aspectId": "nope"},
        {"type": "SCALE_IN", "aspectId": "default", "numberOfSteps": 5},
    ):
        refused = await smo.call("POST", f"/vnf_instances/{instance_id}/scale", body)
        assert refused.status_code == 400, refused.text
    assert release_records(k8s_emulator, RELEASE, NS)[-1] == (3, "deployed")

    # Change the current package: Helm upgrades to chart 1.1.0 (image tag 2), replicas kept.
    op = await smo.task(
        f"/vnf_instances/{instance_id}/change_vnfpkg",
        {"vnfdId": v2, "additionalParams": {"values": {"tag": "2"}}},
    )
    done = await smo.poll(op)
    assert (done["operation"], done["operationState"]) == ("CHANGE_VNFPKG", "COMPLETED"), done
    assert (image(k8s_emulator), replicas(k8s_emulator)) == ("example/app:2", 2)
    instance = await smo.instance(instance_id)
    assert (instance["vnfdId"], instance["vnfSoftwareVersion"]) == (v2, "1.1.0")

    # Heal: the workload deleted behind the gateway's back is re-created by the release.
    k8s_emulator.delete("apps/v1", "Deployment", f"{RELEASE}-app", NS)
    assert workload(k8s_emulator) is None
    op = await smo.task(f"/vnf_instances/{instance_id}/heal", {"cause": "workload lost"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert (replicas(k8s_emulator), image(k8s_emulator)) == (2, "example/app:2")

    # The occurrences, as the SMO queries them.
    listed = await smo.call("GET", f"/vnf_lcm_op_occs?filter=(eq,vnfInstanceId,{instance_id})")
    operations = [o["operation"] for o in listed.json()]
    assert operations == ["INSTANTIATE", "SCALE", "SCALE_TO_LEVEL", "CHANGE_VNFPKG", "HEAL"]
    assert all("operationParams" not in o for o in listed.json())  # excluded by default

    # Terminate: the release is uninstalled; the instance is NOT_INSTANTIATED again.
    op = await smo.task(f"/vnf_instances/{instance_id}/terminate", {"terminationType": "FORCEFUL"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert release_records(k8s_emulator, RELEASE, NS) == []
    assert workload(k8s_emulator) is None
    instance = await smo.instance(instance_id)
    assert instance["instantiationState"] == "NOT_INSTANTIATED"
    assert instance["vnfdId"] == v2  # the package it ran last

    deleted = await smo.call("DELETE", f"/vnf_instances/{instance_id}")
    assert deleted.status_code == 204, deleted.text
    assert (await smo.call("GET", f"/vnf_instances/{instance_id}")).status_code == 404


async def test_a_failed_change_is_rolled_back_retried_or_given_up(
    gw: GatewayClient, contract: ContractValidator, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    smo = StandardSmo(gw, contract)
    good = await onboard(gw, chart(tmp_path, "1.0.0", "1"), "smo-app", "1.0.0")
    broken = await onboard(gw, chart(tmp_path, "2.0.0", "2", BROKEN_DEPLOYMENT), "smo-app", "2.0.0")
    created = await smo.call("POST", "/vnf_instances", {"vnfdId": good})
    instance_id = created.json()["id"]
    op = await smo.task(
        f"/vnf_instances/{instance_id}/instantiate",
        {"flavourId": "default", "additionalParams": {"namespace": NS, "releaseName": RELEASE}},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"

    # The upgrade the API server refuses: FAILED_TEMP with Helm's words; the cluster keeps 1.0.0.
    op = await smo.task(f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": broken})
    failed = await smo.poll(op)
    assert failed["operationState"] == "FAILED_TEMP", failed
    assert {"retry", "rollback", "fail"} <= set(failed["_links"])
    assert release_records(k8s_emulator, RELEASE, NS) == [(1, "deployed"), (2, "failed")]
    assert image(k8s_emulator) == "example/app:1"
    # While it is FAILED_TEMP, other tasks on the instance are 409.
    blocked = await smo.call("POST", f"/vnf_instances/{instance_id}/heal", {})
    assert blocked.status_code == 409, blocked.text
    # The error says why, as ProblemDetails.
    got = (await smo.call("GET", f"{op}?all_fields")).json()
    assert got["error"]["status"] >= 400 and "replicas" in got["error"]["detail"], got

    # Rollback: Helm's rollback to revision 1; ROLLED_BACK; the instance runs 1.0.0.
    response = await smo.call("POST", f"{op}/rollback")
    assert response.status_code == 202, response.text
    rolled = await smo.poll(op, frozenset({"ROLLED_BACK", "FAILED_TEMP"}))
    assert rolled["operationState"] == "ROLLED_BACK", rolled
    assert release_records(k8s_emulator, RELEASE, NS)[-1] == (3, "deployed")
    instance = await smo.instance(instance_id)
    assert (instance["vnfdId"], instance["vnfSoftwareVersion"]) == (good, "1.0.0")
    # A rolled-back occurrence has no way out left: 409.
    assert (await smo.call("POST", f"{op}/retry")).status_code == 409

    # Retry: the same step again (Helm tries the upgrade once more, fails again) …
    op = await smo.task(f"/vnf_instances/{instance_id}/change_vnfpkg", {"vnfdId": broken})
    assert (await smo.poll(op))["operationState"] == "FAILED_TEMP"
    before = len(release_records(k8s_emulator, RELEASE, NS))
    response = await smo.call("POST", f"{op}/retry")
    assert response.status_code == 202, response.text
    again = await smo.poll(op, frozenset({"COMPLETED", "FAILED_TEMP"}))
    assert again["operationState"] == "FAILED_TEMP", again
    assert len(release_records(k8s_emulator, RELEASE, NS)) > before  # it really ran again

    # … then fail: FAILED (final, 200 with the occurrence); the instance is free again.
    response = await smo.call("POST", f"{op}/fail")
    assert response.status_code == 200, response.text
    assert response.json()["operationState"] == "FAILED"
    assert (await smo.call("POST", f"{op}/rollback")).status_code == 409
    op = await smo.task(f"/vnf_instances/{instance_id}/terminate", {"terminationType": "GRACEFUL"})
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert release_records(k8s_emulator, RELEASE, NS) == []

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

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CONFIGMAP, DEPLOYMENT, build_chart
from conftest import shared_dir
from killedhelm import release_records
from netweave.config import NotificationSettings, Settings
from netweave.store.outbox import OutboxStore
from netweave.testing.contracts import ContractValidator
from netweave.testing.etsi import StandardSmo, sol003_v1_contract, sol003_vnflcm_contract
from netweave.testing.etsi_notify import (
    CallbackSink,
    callback_sink,
    notification_validator,
    occurrence_story,
)
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.polling import until
from netweave.testing.vnfpkgm import build_csar, sol005_vnfpkgm_contract, vnfd_document

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


def helm_settings(tmp_path: Path, kubeconfig: Path) -> Settings:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "helm-local",
                "type": "helm",
                "default": True,
                "config": {
                    "storage": {"kind": "local"},
                    "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
                    "timeouts": {"write": 20},
                },
            }
        ],
    )
    # The SMO's callback listens on 127.0.0.1; retries come quickly so the test is short.
    settings.notifications = NotificationSettings(
        allowed_cidrs=["127.0.0.0/8"],
        poll_interval=0.05,
        settle_seconds=0.05,
        backoff_base=0.1,
        backoff_max=0.5,
        max_attempts=100,
        timeout=3.0,
        lease_seconds=1.0,
    )
    return settings


@pytest.fixture
async def gw(tmp_path: Path, k8s_kubeconfig: Path) -> AsyncIterator[GatewayClient]:
    async with running_gateway(
        tmp_path, settings=helm_settings(tmp_path, k8s_kubeconfig)
    ) as client:
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
    # By the VNFD's instantiation level instead: the generated VNFD's "default" level is the
    # chart's own replicas (level 0); a level it does not declare is a 400 naming the ones it does.
    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale_to_level", {"instantiationLevelId": "default"}
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(k8s_emulator) == 1
    info = (await smo.instance(instance_id))["instantiatedVnfInfo"]
    assert info["scaleStatus"] == [{"aspectId": "default", "scaleLevel": 0}]
    unknown = await smo.call(
        "POST", f"/vnf_instances/{instance_id}/scale_to_level", {"instantiationLevelId": "big"}
    )
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["detail"].endswith("(it declares: default)"), unknown.text
    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale_to_level",
        {"scaleInfo": [{"aspectId": "default", "scaleLevel": 1}]},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(k8s_emulator) == 2
    # An aspect it does not have, or a level below 0: 400 (SOL003 has no 422 for scale).
    for body in (
        {"type": "SCALE_OUT", "aspectId": "nope"},
        {"type": "SCALE_IN", "aspectId": "default", "numberOfSteps": 5},
    ):
        refused = await smo.call("POST", f"/vnf_instances/{instance_id}/scale", body)
        assert refused.status_code == 400, refused.text
    assert release_records(k8s_emulator, RELEASE, NS)[-1] == (5, "deployed")

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
    assert operations == [
        "INSTANTIATE", "SCALE", "SCALE_TO_LEVEL", "SCALE_TO_LEVEL", "SCALE_TO_LEVEL",
        "CHANGE_VNFPKG", "HEAL",
    ]  # fmt: skip
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
    sink = CallbackSink()
    sink.start()
    # The SMO follows the occurrences by notification too (only them: a filter).
    subscribed = await smo.call(
        "POST",
        "/subscriptions",
        {"callbackUri": sink.url, "filter": {"notificationTypes": [OP_OCC]}},
    )
    assert subscribed.status_code == 201, subscribed.text
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
    rolled_back_id = op.rsplit("/", 1)[1]
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
    failed_id = op.rsplit("/", 1)[1]
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

    # The notifications told the same stories; every result after a failure carries the error.
    try:
        bodies = await sink.wait_for(lambda bs: "RESULT:FAILED" in occurrence_story(bs, failed_id))
    finally:
        sink.stop()
    validate = notification_validator(shared_dir(), 2)
    for received in sink.received:
        validate(received.body)
    assert occurrence_story(bodies, rolled_back_id) == [
        "START:STARTING",
        "START:PROCESSING",
        "RESULT:FAILED_TEMP",
        "START:ROLLING_BACK",
        "RESULT:ROLLED_BACK",
    ]
    assert occurrence_story(bodies, failed_id) == [
        "START:STARTING",
        "START:PROCESSING",
        "RESULT:FAILED_TEMP",
        "START:PROCESSING",
        "RESULT:FAILED_TEMP",
        "RESULT:FAILED",
    ]
    for body in bodies:
        if body["operationState"] in ("FAILED_TEMP", "FAILED", "ROLLED_BACK"):
            assert "replicas" in body["error"]["detail"], body
        else:
            assert "error" not in body


# -- following occurrences by notification ---------------------------------------------------

OP_OCC = "VnfLcmOperationOccurrenceNotification"
#: A claim the release keeps while ``values.storage`` is set.
PVC = """{{- if .Values.storage }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Release.Name }}-data
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: 1Gi
{{- end }}
"""
_V1 = {2: "2.3.0", 1: "1.3.0"}


def rich_chart(tmp_path: Path, version: str, tag: str) -> Path:
    return build_chart(
        tmp_path / f"rich-{version}",
        "smo-rich",
        version,
        values={"replicaCount": 1, "tag": tag, "greeting": "hello", "storage": True},
        templates={"deployment.yaml": DEPLOYMENT, "configmap.yaml": CONFIGMAP, "pvc.yaml": PVC},
    )


def helm_objects(k8s: KubernetesEmulator, name: str, namespace: str) -> dict[str, str]:
    """``namespace/Kind/name`` → the object's manifest document, of the release's latest
    revision as Helm stored it (its release Secret: base64 of gzipped JSON)."""
    secrets = k8s.list("v1", "Secret", namespace, label_selector=f"owner=helm,name={name}")
    if not secrets:
        return {}
    latest = max(secrets, key=lambda s: int(s["metadata"]["labels"]["version"]))
    release = json.loads(
        gzip.decompress(base64.b64decode(base64.b64decode(latest["data"]["release"])))
    )
    objects = {}
    for doc in yaml.safe_load_all(release["manifest"]):
        if isinstance(doc, dict) and "kind" in doc:
            meta = doc["metadata"]
            key = f"{meta.get('namespace', namespace)}/{doc['kind']}/{meta['name']}"
            objects[key] = yaml.safe_dump(doc, sort_keys=True)
    return objects


def affected(body: dict[str, Any]) -> dict[str, str]:
    """id → changeType of an op-occ's (or a notification's) VNFCs and storages."""
    source = body.get("resourceChanges", body)
    entries = [*source.get("affectedVnfcs", []), *source.get("affectedVirtualStorages", [])]
    return {e["id"]: e["changeType"] for e in entries}


def in_cluster(k8s: KubernetesEmulator, key: str) -> bool:
    namespace, kind, name = key.split("/")
    versions = {"Deployment": "apps/v1"}
    return k8s.get(versions.get(kind, "v1"), kind, name, namespace) is not None


async def result_of(sink: CallbackSink, op_occ_id: str) -> dict[str, Any]:
    """The SMO follows the occurrence by notification: its RESULT, once it came."""
    bodies = await sink.wait_for(
        lambda bs: any(
            b.get("vnfLcmOpOccId") == op_occ_id and b["notificationStatus"] == "RESULT" for b in bs
        ),
        seconds=30.0,
    )
    return next(
        b
        for b in bodies
        if b.get("vnfLcmOpOccId") == op_occ_id and b["notificationStatus"] == "RESULT"
    )


@pytest.mark.parametrize("major", [2, 1])
async def test_the_smo_follows_occurrences_by_notification(
    major: int, gw: GatewayClient, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    contract = (sol003_vnflcm_contract if major == 2 else sol003_v1_contract)(shared_dir())
    validate = notification_validator(shared_dir(), major)
    smo = StandardSmo(gw, contract, major=major)
    v1 = await onboard(gw, rich_chart(tmp_path, "1.0.0", "1"), "smo-rich", "1.0.0")
    with callback_sink() as sink:
        created = await smo.call(
            "POST",
            "/subscriptions",
            {
                "callbackUri": sink.url,
                "filter": {"notificationTypes": [OP_OCC, "VnfIdentifierCreationNotification",
                                                 "VnfIdentifierDeletionNotification"]},
                "authentication": {
                    "authType": ["BASIC"],
                    "paramsBasic": {"userName": "smo", "password": "callback-secret-1"},
                },
            },
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert len(sink.gets) == 1  # tested before it was stored
        instance_id = (await smo.call("POST", "/vnf_instances", {"vnfdId": v1})).json()["id"]

        # Instantiate: the RESULT lists what Helm's release holds, each object in the cluster.
        op = await smo.task(
            f"/vnf_instances/{instance_id}/instantiate",
            {"flavourId": "default", "additionalParams": {"namespace": NS, "releaseName": RELEASE}},
        )
        op_id = op.rsplit("/", 1)[1]
        result = await result_of(sink, op_id)
        assert result["operationState"] == "COMPLETED", result
        objects = helm_objects(k8s_emulator, RELEASE, NS)
        assert set(objects) == {
            f"{NS}/Deployment/{RELEASE}-app",
            f"{NS}/ConfigMap/{RELEASE}-cfg",
            f"{NS}/PersistentVolumeClaim/{RELEASE}-data",
        }
        assert affected(result) == dict.fromkeys(objects, "ADDED")
        assert all(in_cluster(k8s_emulator, key) for key in objects)
        storages = [e["id"] for e in result["affectedVirtualStorages"]]
        assert storages == [f"{NS}/PersistentVolumeClaim/{RELEASE}-data"]
        # Polling says the same.
        polled = (await smo.call("GET", f"{op}?fields=resourceChanges")).json()
        assert affected(polled) == affected(result)

        # Scale out: only the Deployment's manifest changed (and the cluster's replicas).
        before = helm_objects(k8s_emulator, RELEASE, NS)
        op = await smo.task(
            f"/vnf_instances/{instance_id}/scale", {"type": "SCALE_OUT", "aspectId": "default"}
        )
        result = await result_of(sink, op.rsplit("/", 1)[1])
        after = helm_objects(k8s_emulator, RELEASE, NS)
        changed = {key for key in after if before.get(key) != after[key]}
        assert changed == {f"{NS}/Deployment/{RELEASE}-app"}
        assert affected(result) == dict.fromkeys(changed, "MODIFIED")
        assert replicas(k8s_emulator) == 2

        if major == 2:
            # A package without the claim and with another image: REMOVED and MODIFIED.
            v2 = await onboard(gw, rich_chart(tmp_path, "1.1.0", "2"), "smo-rich", "1.1.0")
            op = await smo.task(
                f"/vnf_instances/{instance_id}/change_vnfpkg",
                {"vnfdId": v2, "additionalParams": {"values": {"storage": False, "tag": "2"}}},
            )
            result = await result_of(sink, op.rsplit("/", 1)[1])
            assert result["operationState"] == "COMPLETED", result
            assert affected(result) == {
                f"{NS}/Deployment/{RELEASE}-app": "MODIFIED",
                f"{NS}/PersistentVolumeClaim/{RELEASE}-data": "REMOVED",
            }
            assert not in_cluster(k8s_emulator, f"{NS}/PersistentVolumeClaim/{RELEASE}-data")
            assert image(k8s_emulator) == "example/app:2"
            assert result["modificationsTriggeredByVnfPkgChange"]["vnfdId"] == v2

        # Heal re-applies the release: nothing in its manifest changes, so no resource is
        # listed (the gateway sees the release, not which live objects Helm re-created).
        k8s_emulator.delete("apps/v1", "Deployment", f"{RELEASE}-app", NS)
        op = await smo.task(f"/vnf_instances/{instance_id}/heal", {"cause": "lost"})
        result = await result_of(sink, op.rsplit("/", 1)[1])
        assert result["operationState"] == "COMPLETED" and affected(result) == {}
        assert workload(k8s_emulator) is not None

        # Terminate: everything the last revision held is REMOVED, and gone from the cluster.
        last = helm_objects(k8s_emulator, RELEASE, NS)
        op = await smo.task(
            f"/vnf_instances/{instance_id}/terminate", {"terminationType": "FORCEFUL"}
        )
        result = await result_of(sink, op.rsplit("/", 1)[1])
        assert affected(result) == dict.fromkeys(last, "REMOVED")
        assert not any(in_cluster(k8s_emulator, key) for key in last)
        assert (await smo.call("DELETE", f"/vnf_instances/{instance_id}")).status_code == 204
        bodies = await sink.wait_for(
            lambda bs: any(b["notificationType"] == "VnfIdentifierDeletionNotification" for b in bs)
        )

    for received in sink.received:
        validate(received.body)
        assert received.headers.get("Version") == _V1[major]
        assert received.headers.get("Authorization", "").startswith("Basic ")
    # Every occurrence told its story in order, each notification once.
    assert len(sink.accepted()) == len(bodies)
    for op_occ_id in {b["vnfLcmOpOccId"] for b in bodies if "vnfLcmOpOccId" in b}:
        assert occurrence_story(bodies, op_occ_id) == [
            "START:STARTING",
            "START:PROCESSING",
            "RESULT:COMPLETED",
        ]
    assert bodies[0]["notificationType"] == "VnfIdentifierCreationNotification"
    assert bodies[-1]["notificationType"] == "VnfIdentifierDeletionNotification"


async def test_notifications_outlive_a_dead_callback_and_a_gateway_restart(
    tmp_path: Path, k8s_kubeconfig: Path, k8s_emulator: KubernetesEmulator
) -> None:
    contract = sol003_vnflcm_contract(shared_dir())
    sink = CallbackSink()
    sink.start()
    try:
        async with running_gateway(
            tmp_path, settings=helm_settings(tmp_path, k8s_kubeconfig)
        ) as gw:
            smo = StandardSmo(gw, contract)
            # An endpoint that fails the test GET: 422, and no subscription exists.
            with callback_sink(get_status=404) as broken:
                refused = await smo.call("POST", "/subscriptions", {"callbackUri": broken.url})
                assert refused.status_code == 422, refused.text
                assert "callback test failed" in refused.json()["detail"]
                assert len(broken.gets) == 1 and broken.received == []
            assert (await smo.call("GET", "/subscriptions")).json() == []
            assert await gw.store.list_vnf_subscriptions(after=None, limit=10) == []

            created = await smo.call("POST", "/subscriptions", {"callbackUri": sink.url})
            assert created.status_code == 201, created.text
            subscription_id = created.json()["id"]
            # The SMO's endpoint goes down; the lifecycle goes on (the SMO polls meanwhile).
            sink.stop()
            package = await onboard(gw, chart(tmp_path, "1.0.0", "1"), "smo-app", "1.0.0")
            instance_id = (await smo.call("POST", "/vnf_instances", {"vnfdId": package})).json()[
                "id"
            ]
            op = await smo.task(
                f"/vnf_instances/{instance_id}/instantiate",
                {"flavourId": "default", "additionalParams": {"namespace": NS}},
            )
            assert (await smo.poll(op))["operationState"] == "COMPLETED"
            # The first notification is being retried; the later ones about the same instance
            # wait behind it (they go out in order); none is given up.
            outbox = OutboxStore(gw.store)
            for _ in range(200):  # bounded: 10 s
                rows = await outbox.deliveries(subscription_id=subscription_id)
                if len(rows) == 4 and rows[0]["attempts"] >= 3:
                    break
                await asyncio.sleep(0.05)
            assert len(rows) == 4, rows
            assert {r["state"] for r in rows} == {"PENDING"}
            assert rows[0]["attempts"] >= 3 and "ConnectError" in str(rows[0]["last_error"]), rows
            assert [r["attempts"] for r in rows[1:]] == [0, 0, 0]
        # The gateway is stopped; the endpoint comes back; a new gateway process delivers.
        sink.start()
        async with running_gateway(
            tmp_path, settings=helm_settings(tmp_path, k8s_kubeconfig)
        ) as gw:
            op_id = op.rsplit("/", 1)[1]
            bodies = await sink.wait_for(
                lambda bs: "RESULT:COMPLETED" in occurrence_story(bs, op_id), seconds=30.0
            )
            outbox = OutboxStore(gw.store)

            async def all_delivered() -> bool:
                # The sink has the body before the gateway commits DELIVERED for it.
                rows = await outbox.deliveries(subscription_id=subscription_id)
                return {r["state"] for r in rows} == {"DELIVERED"}

            await until(all_delivered, 15, what="every delivery marked DELIVERED")
    finally:
        sink.stop()
    validate = notification_validator(shared_dir(), 2)
    for received in sink.received:
        validate(received.body)
    # Nothing lost, nothing twice, in order.
    assert bodies[0]["notificationType"] == "VnfIdentifierCreationNotification"
    assert occurrence_story(bodies, op_id) == [
        "START:STARTING",
        "START:PROCESSING",
        "RESULT:COMPLETED",
    ]
    assert len(sink.accepted()) == len(bodies) == 4
    assert bodies[-1]["vnfInstanceId"] == instance_id


# -- what the workloads mount and what selects them ------------------------------------------

#: The release's Deployment mounting its claim; a Service and a NetworkPolicy selecting its
#: pods; a Service selecting another workload's pod only, and one without a selector.
MOUNTING_DEPLOYMENT = DEPLOYMENT.replace(
    '          image: "example/app:{{ .Values.tag }}"\n',
    '          image: "example/app:{{ .Values.tag }}"\n'
    "      volumes:\n"
    "        - name: data\n"
    "          persistentVolumeClaim:\n"
    "            claimName: {{ .Release.Name }}-data\n",
)
SERVICES = """apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    app.kubernetes.io/instance: {{ .Release.Name }}
  ports:
    - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-idle
spec:
  selector:
    app.kubernetes.io/instance: neighbour
  ports:
    - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-manual
spec:
  ports:
    - port: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .Release.Name }}-fence
spec:
  podSelector:
    matchExpressions:
      - key: app.kubernetes.io/instance
        operator: In
        values: [{{ .Release.Name }}]
  policyTypes: [Ingress]
"""


@pytest.mark.parametrize("major", [2, 1])
async def test_the_instance_links_vnfcs_to_their_storage_and_link_ports(
    major: int, gw: GatewayClient, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    contract = (sol003_vnflcm_contract if major == 2 else sol003_v1_contract)(shared_dir())
    smo = StandardSmo(gw, contract, major=major)
    archive = build_chart(
        tmp_path / "linked",
        "smo-linked",
        "1.0.0",
        values={"replicaCount": 1, "tag": "1", "greeting": "hello", "storage": True},
        templates={
            "deployment.yaml": MOUNTING_DEPLOYMENT,
            "configmap.yaml": CONFIGMAP,
            "pvc.yaml": PVC,
            "services.yaml": SERVICES,
        },
    )
    package = await onboard(gw, archive, "smo-linked", "1.0.0")
    # A pod of someone else's in the namespace: the "-idle" Service selects it (so it is ready).
    k8s_emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    k8s_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "neighbour",
                "namespace": NS,
                "labels": {"app.kubernetes.io/instance": "neighbour"},
            },
            "spec": {"containers": [{"name": "c", "image": "example/other:1"}]},
        }
    )
    instance_id = (await smo.call("POST", "/vnf_instances", {"vnfdId": package})).json()["id"]
    op = await smo.task(
        f"/vnf_instances/{instance_id}/instantiate",
        {"flavourId": "default", "additionalParams": {"namespace": NS, "releaseName": RELEASE}},
    )
    done = await smo.poll(op)
    assert done["operationState"] == "COMPLETED", done.get("error")

    # What the cluster holds: the Deployment's pods mount the claim, the Service selects them.
    live = workload(k8s_emulator)
    assert live is not None
    claim = f"{RELEASE}-data"
    volumes = live["spec"]["template"]["spec"]["volumes"]
    assert volumes[0]["persistentVolumeClaim"]["claimName"] == claim
    assert k8s_emulator.get("v1", "PersistentVolumeClaim", claim, NS) is not None
    service = k8s_emulator.get("v1", "Service", f"{RELEASE}-web", NS)
    assert service is not None
    assert (
        service["spec"]["selector"].items()
        <= live["spec"]["template"]["metadata"]["labels"].items()
    )

    info = (await smo.instance(instance_id))["instantiatedVnfInfo"]  # validated by the SMO
    vnfcs = {v["id"]: v for v in info["vnfcResourceInfo"]}
    app, cfg = f"{NS}/Deployment/{RELEASE}-app", f"{NS}/ConfigMap/{RELEASE}-cfg"
    assert set(vnfcs) == {app, cfg}
    storage_ids = [s["id"] for s in info["virtualStorageResourceInfo"]]
    assert storage_ids == [f"{NS}/PersistentVolumeClaim/{claim}"]
    assert vnfcs[app]["storageResourceIds"] == storage_ids
    # A ConfigMap has no pods: no storage, no connection point.
    assert "storageResourceIds" not in vnfcs[cfg] and "vnfcCpInfo" not in vnfcs[cfg]

    links = {
        link["id"]: link
        for link in info["virtualLinkResourceInfo" if major == 1 else "vnfVirtualLinkResourceInfo"]
    }
    web, idle = f"{NS}/Service/{RELEASE}-web", f"{NS}/Service/{RELEASE}-idle"
    manual, fence = f"{NS}/Service/{RELEASE}-manual", f"{NS}/NetworkPolicy/{RELEASE}-fence"
    assert set(links) == {web, idle, manual, fence}
    # A Service selecting none of the release's pods (another's only), or no pod at all (no
    # selector): no port.
    assert "vnfLinkPorts" not in links[idle] and "vnfLinkPorts" not in links[manual]
    cps = {cp["id"]: cp for cp in vnfcs[app]["vnfcCpInfo"]}
    assert len(cps) == 2
    for link_id in (web, fence):
        (port,) = links[link_id]["vnfLinkPorts"]
        assert port["cpInstanceType"] == "VNFC_CP"
        # The port's CP is the selected VNFC's, and that CP names the port back.
        cp = cps[port["cpInstanceId"]]
        assert cp["vnfLinkPortId"] == port["id"]
        link_name = links[link_id]["networkResource"]["resourceId"]
        assert cp["cpdId"] == link_name
        assert port["resourceHandle"]["resourceId"] == f"{link_name}/{RELEASE}-app"
        assert port["resourceHandle"]["vimLevelResourceType"] == link_id.split("/")[1]
        if major == 1:
            assert port["resourceHandle"]["vimConnectionId"] == "helm-local"


# -- instantiation levels -------------------------------------------------------------------

#: The SOL003 V3.7.1 VNF package contract (SOL005's, as test_etsi_vnfpkgm uploads with).
PKGM = "/vnfpkgm/v2"


async def onboard_csar(gw: GatewayClient, csar: Path) -> None:
    """Onboard ``csar`` through the ETSI package face, every exchange contract-validated."""
    pkgm = sol005_vnfpkgm_contract(shared_dir())
    headers = {"Version": "2.4.0"}

    async def call(method: str, path: str, **kwargs: Any) -> Any:
        response = await gw.request(
            method, PKGM + path, headers=headers | kwargs.pop("h", {}), **kwargs
        )
        answer = response.json() if response.content else None
        pkgm.validate_response(
            method, path, response.status_code, answer, headers=dict(response.headers)
        )
        return response

    created = await call("POST", "/vnf_packages", json={})
    assert created.status_code == 201, created.text
    pkg_id = created.json()["id"]
    uploaded = await call(
        "PUT",
        f"/vnf_packages/{pkg_id}/package_content",
        content=csar.read_bytes(),  # noqa: ASYNC240  (a small test file)
        h={"Content-Type": "application/zip"},
    )
    assert uploaded.status_code == 202, uploaded.text
    for _ in range(200):  # bounded: 10 s
        got = await call("GET", f"/vnf_packages/{pkg_id}")
        if got.json()["onboardingState"] == "ONBOARDED":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"package {pkg_id} not onboarded: {got.text}")


async def op_occs_of(smo: StandardSmo, instance_id: str) -> list[str]:
    listed = await smo.call("GET", f"/vnf_lcm_op_occs?filter=(eq,vnfInstanceId,{instance_id})")
    assert listed.status_code == 200, listed.text
    return [o["operation"] for o in listed.json()]


@pytest.mark.parametrize("major", [2, 1])
async def test_instantiate_at_an_instantiation_level_of_the_vnfd(
    gw: GatewayClient, k8s_emulator: KubernetesEmulator, tmp_path: Path, major: int
) -> None:
    contract = (
        sol003_vnflcm_contract(shared_dir()) if major == 2 else sol003_v1_contract(shared_dir())
    )
    smo = StandardSmo(gw, contract, major=major)
    # A CSAR whose VNFD (flavour "small") declares levels "small" (web_aspect level 0) and
    # "large" (level 3): one replica, one more per step, on the chart's replicaCount.
    vnfd_id = f"5f1c7a80-0000-4000-8000-00000000000{major}"
    csar = build_csar(
        tmp_path / "levels.csar",
        vnfd=vnfd_document(vnfd_id, vdu="app", level=3),
        chart=chart(tmp_path, "1.0.0", "1"),
    )
    await onboard_csar(gw, csar)
    created = await smo.call("POST", "/vnf_instances", {"vnfdId": vnfd_id})
    assert created.status_code == 201, created.text
    instance_id = created.json()["id"]
    params = {"namespace": NS, "releaseName": RELEASE}

    # A level the VNFD does not declare, or values contradicting the level: 400, nothing done.
    for body, says in (
        (
            {"flavourId": "small", "instantiationLevelId": "huge", "additionalParams": params},
            "(it declares: large, small)",
        ),
        (
            {
                "flavourId": "small",
                "instantiationLevelId": "large",
                "additionalParams": {**params, "values": {"replicaCount": 2}},
            },
            "contradicts instantiation level 'large'",
        ),
    ):
        refused = await smo.call("POST", f"/vnf_instances/{instance_id}/instantiate", body)
        assert refused.status_code == 400, refused.text
        assert says in refused.json()["detail"], refused.text
        assert release_records(k8s_emulator, RELEASE, NS) == []
        assert workload(k8s_emulator) is None
        assert (await smo.instance(instance_id))["instantiationState"] == "NOT_INSTANTIATED"
        assert await op_occs_of(smo, instance_id) == []

    # The declared level: the real release gets its replicas (1 + 3 steps).
    op = await smo.task(
        f"/vnf_instances/{instance_id}/instantiate",
        {"flavourId": "small", "instantiationLevelId": "large", "additionalParams": params},
    )
    done = await smo.poll(op)
    assert (done["operation"], done["operationState"]) == ("INSTANTIATE", "COMPLETED"), done
    assert release_records(k8s_emulator, RELEASE, NS) == [(1, "deployed")]
    assert replicas(k8s_emulator) == 4
    instance = await smo.instance(instance_id)
    assert instance["instantiatedVnfInfo"]["scaleStatus"] == [
        {"aspectId": "web_aspect", "scaleLevel": 3}
    ]
    # And back to the VNFD's other level by scale_to_level.
    op = await smo.task(
        f"/vnf_instances/{instance_id}/scale_to_level", {"instantiationLevelId": "small"}
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(k8s_emulator) == 1
    assert release_records(k8s_emulator, RELEASE, NS)[-1] == (2, "deployed")


async def test_scale_to_a_level_of_an_unreadable_vnfd_is_refused_and_changes_nothing(
    tmp_path: Path, k8s_kubeconfig: Path, k8s_emulator: KubernetesEmulator
) -> None:
    contract = sol003_vnflcm_contract(shared_dir())
    async with running_gateway(tmp_path, settings=helm_settings(tmp_path, k8s_kubeconfig)) as gw:
        smo = StandardSmo(gw, contract)
        package = await onboard(gw, chart(tmp_path, "1.0.0", "1"), "smo-app", "1.0.0")
        instance_id = (await smo.call("POST", "/vnf_instances", {"vnfdId": package})).json()["id"]
        op = await smo.task(
            f"/vnf_instances/{instance_id}/instantiate",
            {"flavourId": "default", "additionalParams": {"namespace": NS, "releaseName": RELEASE}},
        )
        assert (await smo.poll(op))["operationState"] == "COMPLETED"
        op = await smo.task(
            f"/vnf_instances/{instance_id}/scale_to_level",
            {"scaleInfo": [{"aspectId": "default", "scaleLevel": 2}]},
        )
        assert (await smo.poll(op))["operationState"] == "COMPLETED"
        assert replicas(k8s_emulator) == 3
        releases = release_records(k8s_emulator, RELEASE, NS)
        assert releases[-1] == (2, "deployed")
    # Behind the gateway's back, the chart's archive (the generated VNFD's source) is lost;
    # the gateway restarts, so it holds no VNFD rendered before.
    stored = [p for p in (tmp_path / "data").rglob("smo-app-1.0.0.tgz") if p.is_file()]
    assert len(stored) == 1, stored
    kept = stored[0].read_bytes()
    stored[0].unlink()
    async with running_gateway(tmp_path, settings=helm_settings(tmp_path, k8s_kubeconfig)) as gw:
        smo = StandardSmo(gw, contract)
        before = await op_occs_of(smo, instance_id)
        refused = await smo.call(
            "POST",
            f"/vnf_instances/{instance_id}/scale_to_level",
            {"instantiationLevelId": "default"},
        )
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == 409
        assert f"the VNFD of package {package} cannot be read" in problem["detail"], problem
        assert "chart smo-app:1.0.0 not found" in problem["detail"], problem
        # Nothing changed: no occurrence, the release and its Deployment as they were.
        assert await op_occs_of(smo, instance_id) == before == ["INSTANTIATE", "SCALE_TO_LEVEL"]
        assert release_records(k8s_emulator, RELEASE, NS) == releases
        assert replicas(k8s_emulator) == 3
        # Still usable: it reads INSTANTIATED, and once the archive is back the same request
        # scales it (the generated VNFD's "default" level is the chart's replicas).
        assert (await smo.instance(instance_id))["instantiationState"] == "INSTANTIATED"
        stored[0].write_bytes(kept)
        op = await smo.task(
            f"/vnf_instances/{instance_id}/scale_to_level", {"instantiationLevelId": "default"}
        )
        assert (await smo.poll(op))["operationState"] == "COMPLETED"
        assert release_records(k8s_emulator, RELEASE, NS)[-1] == (3, "deployed")
        assert replicas(k8s_emulator) == 1
        assert await op_occs_of(smo, instance_id) == [*before, "SCALE_TO_LEVEL"]


async def test_instantiate_without_a_level_starts_at_the_vnfds_default_level(
    gw: GatewayClient, contract: ContractValidator, k8s_emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    # SOL003: no instantiationLevelId instantiates the VNFD's default level. A bare chart's
    # generated VNFD declares "default" as the chart's own replicas (2 here: level 1).
    smo = StandardSmo(gw, contract)
    archive = build_chart(
        tmp_path / "charts",
        "smo-app",
        "1.0.0",
        values={"replicaCount": 2, "tag": "1"},
        templates={"deployment.yaml": DEPLOYMENT},
    )
    package = await onboard(gw, archive, "smo-app", "1.0.0")
    instance_id = (await smo.call("POST", "/vnf_instances", {"vnfdId": package})).json()["id"]
    op = await smo.task(
        f"/vnf_instances/{instance_id}/instantiate",
        {"flavourId": "default", "additionalParams": {"namespace": NS, "releaseName": RELEASE}},
    )
    assert (await smo.poll(op))["operationState"] == "COMPLETED"
    assert replicas(k8s_emulator) == 2
    info = (await smo.instance(instance_id))["instantiatedVnfInfo"]
    assert info["scaleStatus"] == [{"aspectId": "default", "scaleLevel": 1}]

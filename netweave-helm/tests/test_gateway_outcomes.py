"""Operations that tell the truth, through the gateway's HTTP API with real components: the Helm
adapter loaded by its entry point, the real Helm SDK, the Kubernetes API emulator. Each test
checks what Helm's release storage and the emulator hold, not only the operation's word."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from chartkit import CONFIGMAP, build_chart
from killedhelm import leave_pending, release_records
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
OPERATIONS = "/o2dms/v1/operations"
SETTLED = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
NS = "truth"


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


async def upload(gw: GatewayClient, archive: Path, name: str, version: str) -> str:
    with archive.open("rb") as handle:
        response = await gw.post(
            PACKAGES,
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["packageId"])


async def create(
    gw: GatewayClient, package_id: str, name: str, values: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {"name": name, "namespace": NS, "packageId": package_id, "values": values or {}}
    response = await gw.post(DEPLOYMENTS, json=body)
    assert response.status_code == 201, response.text
    operation = await gw.wait_operation(gw.operation_id(response), SETTLED)
    return response.json(), operation


async def change(gw: GatewayClient, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await gw.request(method, url, json=body)
    assert response.status_code in (201, 202), response.text
    return await gw.wait_operation(gw.operation_id(response), SETTLED)


async def deployment(gw: GatewayClient, deployment_id: str) -> dict[str, Any]:
    response = await gw.get(f"{DEPLOYMENTS}/{deployment_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def roll_back(gw: GatewayClient, operation_id: str) -> dict[str, Any]:
    response = await gw.post(f"{OPERATIONS}/{operation_id}/rollback")
    assert response.status_code == 202, response.text
    return await gw.wait_operation(operation_id, SETTLED)


def replicas(k8s: KubernetesEmulator, name: str) -> Any:
    obj = k8s.get("apps/v1", "Deployment", name, NS)
    assert obj is not None, f"no Deployment {name}"
    return obj["spec"]["replicas"]


def image(k8s: KubernetesEmulator, name: str) -> Any:
    obj = k8s.get("apps/v1", "Deployment", name, NS)
    assert obj is not None, f"no Deployment {name}"
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_an_upgrade_the_api_server_refuses_is_failed_temp_with_helms_message(
    gw: GatewayClient, charts_dir: Path, k8s_emulator: KubernetesEmulator
) -> None:
    package = await upload(gw, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0")
    created, operation = await create(gw, package, "hw", {"replicaCount": 2})
    assert operation["state"] == "COMPLETED", operation
    url = f"{DEPLOYMENTS}/{created['deploymentId']}"

    failed = await change(gw, "PATCH", url, {"values": {"replicaCount": "three"}})

    assert failed["state"] == "FAILED_TEMP", failed
    detail = failed["error"]["detail"]
    # Helm's own words, carrying the API server's refusal of the Deployment.
    assert "upgrading release hw" in detail and "replicas" in detail, detail
    assert failed["error"]["details"]["deploymentStatus"] == "FAILED"
    # The deployment says what Helm says: revision 2 failed; the cluster still runs revision 1.
    assert release_records(k8s_emulator, "hw", NS) == [(1, "deployed"), (2, "failed")]
    stored = await deployment(gw, created["deploymentId"])
    assert (stored["status"], stored["revision"]) == ("FAILED", 2), stored
    assert "replicas" in stored["statusMessage"]
    assert replicas(k8s_emulator, "hw-hello-world") == 2

    # The way out: roll back to what it was (Helm's rollback to revision 1).
    done = await roll_back(gw, failed["operationId"])
    assert done["state"] == "ROLLED_BACK", done
    assert release_records(k8s_emulator, "hw", NS)[-1] == (3, "deployed")
    stored = await deployment(gw, created["deploymentId"])
    assert (stored["status"], stored["revision"]) == ("DEPLOYED", 3), stored
    assert stored["values"] == {"replicaCount": 2}
    assert replicas(k8s_emulator, "hw-hello-world") == 2


async def test_a_create_needing_a_missing_crd_is_failed_temp(
    gw: GatewayClient, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    widget = "apiVersion: example.net/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}\n"
    archive = build_chart(
        tmp_path / "w", "widget", "1.0.0", templates={"w.yaml": widget, "cm.yaml": CONFIGMAP}
    )
    package = await upload(gw, archive, "widget", "1.0.0")

    created, operation = await create(gw, package, "wd")

    assert operation["state"] == "FAILED_TEMP", operation
    assert "Widget" in operation["error"]["detail"], operation["error"]
    assert operation["error"]["status"] == 409
    stored = await deployment(gw, created["deploymentId"])
    assert stored["status"] == "FAILED"
    # Helm refused before it stored anything: no release, no object.
    assert release_records(k8s_emulator, "wd", NS) == []
    assert k8s_emulator.get("v1", "ConfigMap", "wd-cfg", NS) is None

    done = await roll_back(gw, operation["operationId"])
    assert done["state"] == "ROLLED_BACK", done
    assert (await gw.get(f"{DEPLOYMENTS}/{created['deploymentId']}")).status_code == 404


async def test_a_release_left_pending_by_a_crashed_helm_cli_is_a_clear_409_with_a_way_out(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    chart = charts_dir / "hello-world-0.1.0.tgz"
    package = await upload(gw, chart, "hello-world", "0.1.0")
    created, operation = await create(gw, package, "cli", {"replicaCount": 1})
    assert operation["state"] == "COMPLETED", operation
    url = f"{DEPLOYMENTS}/{created['deploymentId']}"
    # Someone ran `helm upgrade` by hand, and it was killed mid-way.
    leave_pending(
        k8s_emulator, k8s_kubeconfig, "upgrade", "cli", NS, chart=chart,
        values={"replicaCount": 5},
    )  # fmt: skip

    refused = await change(gw, "PATCH", url, {"values": {"replicaCount": 2}})

    assert refused["state"] == "FAILED_TEMP", refused
    detail = refused["error"]["detail"]
    assert refused["error"]["status"] == 409
    assert "stuck in pending-upgrade" in detail and f"helm rollback cli -n {NS}" in detail
    assert "/rollback" in detail
    # Reported as Helm has it (an upgrade under way), never as completed.
    stored = await deployment(gw, created["deploymentId"])
    assert stored["status"] == "DEPLOYING", stored
    assert release_records(k8s_emulator, "cli", NS) == [(1, "deployed"), (2, "pending-upgrade")]

    # The way out the message names: the gateway's rollback (Helm's works on pending).
    done = await roll_back(gw, refused["operationId"])
    assert done["state"] == "ROLLED_BACK", done
    assert release_records(k8s_emulator, "cli", NS)[-1] == (3, "deployed")
    assert replicas(k8s_emulator, "cli-hello-world") == 1
    again = await change(gw, "PATCH", url, {"values": {"replicaCount": 2}})
    assert again["state"] == "COMPLETED", again
    assert replicas(k8s_emulator, "cli-hello-world") == 2
    history = (await gw.get(f"{url}/history")).json()["revisions"]
    assert [h["status"] for h in history] == ["SUPERSEDED", "FAILED", "SUPERSEDED", "DEPLOYED"]


async def test_a_scale_without_the_scale_key_is_refused_before_any_operation(
    gw: GatewayClient, tmp_path: Path
) -> None:
    archive = build_chart(
        tmp_path / "b", "plain", "1.0.0", values={"greeting": "hi"}, templates={"c.yaml": CONFIGMAP}
    )
    package = await upload(gw, archive, "plain", "1.0.0")
    created, operation = await create(gw, package, "plain")
    assert operation["state"] == "COMPLETED", operation
    before = (await gw.get(OPERATIONS)).json()["total"]

    response = await gw.post(f"{DEPLOYMENTS}/{created['deploymentId']}/scale", json={"replicas": 3})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "replicaCount" in response.json()["detail"]
    assert (await gw.get(OPERATIONS)).json()["total"] == before
    assert (await deployment(gw, created["deploymentId"]))["status"] == "DEPLOYED"


async def test_an_upgrade_merges_onto_the_gateways_record_or_helms_when_it_moved(
    gw: GatewayClient,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import helm_python

    # Count the upgrade's reads of a release's own values (the SDK call it would make; the
    # scale request's check of the scale key reads the computed values, not counted here).
    value_reads: list[str] = []
    original = helm_python.Config.get_values

    def counting(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("all_values"):
            value_reads.append(name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(helm_python.Config, "get_values", counting)
    chart = charts_dir / "hello-world-0.1.0.tgz"
    package = await upload(gw, chart, "hello-world", "0.1.0")
    created, operation = await create(
        gw, package, "kv", {"replicaCount": 1, "image": {"tag": "1.25"}}
    )
    assert operation["state"] == "COMPLETED", operation
    url = f"{DEPLOYMENTS}/{created['deploymentId']}"

    # The store knows revision 1 and its values: a merge needs no values read from Helm.
    merged = await change(gw, "PATCH", url, {"values": {"replicaCount": 2}})
    assert merged["state"] == "COMPLETED", merged
    assert value_reads == []
    assert replicas(k8s_emulator, "kv-hello-world") == 2
    assert image(k8s_emulator, "kv-hello-world") == "nginx:1.25"
    scaled = await change(gw, "POST", f"{url}/scale", {"replicas": 3})
    assert scaled["state"] == "COMPLETED", scaled
    assert value_reads == [] and replicas(k8s_emulator, "kv-hello-world") == 3

    # Someone upgrades the release behind the gateway's back (revision 4, image 1.27): the
    # store's record is stale, so the next merge starts from Helm's values and keeps that
    # image — those of the release read the upgrade makes anyway (its status and stamp), not
    # from a values read of their own.
    config = helm_python.Config(kubeconfig_path=str(k8s_kubeconfig), namespace=NS)
    await asyncio.to_thread(
        config.upgrade,
        str(chart),
        "kv",
        {"replicaCount": 3, "image": {"tag": "1.27"}},
        namespace=NS,
    )
    assert release_records(k8s_emulator, "kv", NS)[-1] == (4, "deployed")
    moved = await change(gw, "PATCH", url, {"values": {"replicaCount": 1}})
    assert moved["state"] == "COMPLETED", moved
    assert value_reads == []
    assert image(k8s_emulator, "kv-hello-world") == "nginx:1.27"
    assert replicas(k8s_emulator, "kv-hello-world") == 1
    stored = await deployment(gw, created["deploymentId"])
    assert stored["revision"] == 5
    assert stored["values"] == {"replicaCount": 1, "image": {"tag": "1.27"}}


async def test_an_upgrade_whose_revision_check_the_api_server_refuses_still_upgrades_once(
    gw: GatewayClient, charts_dir: Path, k8s_emulator: KubernetesEmulator
) -> None:
    """The upgrade's first step from the gateway's record is one GET of the revision after the
    recorded one (is the record Helm's latest?). The API server refusing that GET (500, once)
    is a passing backend failure: the operation goes on and COMPLETED means Helm upgraded once,
    to the values asked for, and the record says so."""
    package = await upload(gw, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0")
    created, operation = await create(gw, package, "rc", {"replicaCount": 2})
    assert operation["state"] == "COMPLETED", operation
    url = f"{DEPLOYMENTS}/{created['deploymentId']}"
    check = k8s_emulator.faults.error(
        500, path=f"/api/v1/namespaces/{NS}/secrets/sh.helm.release.v1.rc.v2", method="GET"
    )

    done = await change(gw, "PATCH", url, {"values": {"replicaCount": 3}})

    assert check.hits == 1, "the upgrade did not ask whether Helm moved past its record"
    assert done["state"] == "COMPLETED", done
    assert release_records(k8s_emulator, "rc", NS) == [(1, "superseded"), (2, "deployed")]
    stored = await deployment(gw, created["deploymentId"])
    assert (stored["status"], stored["revision"]) == ("DEPLOYED", 2), stored
    assert stored["values"] == {"replicaCount": 3}
    assert replicas(k8s_emulator, "rc-hello-world") == 3

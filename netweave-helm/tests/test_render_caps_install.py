"""Render bombs at install and upgrade, through the gateway's HTTP API (the Helm adapter loaded by
its entry point, the real Helm SDK, the Kubernetes API emulator): a chart that passed the upload's
lint and blows up only with a value set is rendered in the capped child first, so the operation
ends FAILED_TEMP with the cap's 400 problem, Helm is never called and the gateway (this
process: the app runs in it) does not grow."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from chartkit import build_chart
from killedhelm import release_records
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
SETTLED = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
NS = "bombs"
#: A clean template whose cost the values decide: n = 2e7 needs well over the memory cap.
LOOP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-loop\n"
    'data:\n  v: "{{ range until (int .Values.n) }}x{{ end }}"\n'
)
BOMB = {"n": 20_000_000}


def rss_bytes() -> int:
    """This process's resident set (the gateway runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


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
                    "timeouts": {"write": 30},
                    "render": {
                        "memoryBytes": 256 * 1024 * 1024,
                        "timeSeconds": 5,
                        "maxOutputBytes": 1024 * 1024,
                    },
                },
            }
        ],
    )
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def loop_package(gw: GatewayClient, tmp_path: Path) -> str:
    archive = build_chart(
        tmp_path / "loop", "loop", "1.0.0", values={"n": 1}, templates={"cm.yaml": LOOP}
    )
    with archive.open("rb") as handle:
        response = await gw.post(
            PACKAGES,
            data={"name": "loop", "artifactVersion": "1.0.0"},
            files={"chart": (archive.name, handle, "application/gzip")},
        )
    assert response.status_code == 201, response.text  # the lint renders n = 1: harmless
    return str(response.json()["packageId"])


async def settle(gw: GatewayClient, response: Any) -> dict[str, Any]:
    assert response.status_code in (201, 202), response.text
    return await gw.wait_operation(gw.operation_id(response), SETTLED)


def assert_memory_cap(operation: dict[str, Any]) -> None:
    assert operation["state"] == "FAILED_TEMP", operation
    problem = operation["error"]
    assert problem["status"] == 400, problem
    assert problem["details"]["cap"] == "memory", problem
    assert "render.memoryBytes" in problem["detail"], problem


async def test_an_install_render_bomb_is_refused_in_the_child(
    gw: GatewayClient, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    package = await loop_package(gw, tmp_path)
    # One install within the caps first: the gateway loads the Helm SDK and its clients once
    # (tens of MB), which is not the bomb's doing.
    warm = {"name": "warm", "namespace": NS, "packageId": package, "values": {"n": 3}}
    assert (await settle(gw, await gw.post(DEPLOYMENTS, json=warm)))["state"] == "COMPLETED"
    body = {"name": "boom", "namespace": NS, "packageId": package, "values": BOMB}

    before = rss_bytes()
    started = time.monotonic()
    operation = await settle(gw, await gw.post(DEPLOYMENTS, json=body))
    took = time.monotonic() - started
    growth = rss_bytes() - before
    print(f"install render bomb: refused in {took:.2f} s, gateway RSS growth {growth >> 20} MiB")

    assert_memory_cap(operation)
    assert took < 30, took
    assert growth < 50 * 1024 * 1024, growth
    # Helm was never called: no release record, no object.
    assert release_records(k8s_emulator, "boom", NS) == []
    assert k8s_emulator.get("v1", "ConfigMap", "boom-loop", NS) is None


async def test_an_upgrade_render_bomb_leaves_the_release_as_it_was(
    gw: GatewayClient, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    package = await loop_package(gw, tmp_path)
    body = {"name": "fine", "namespace": NS, "packageId": package, "values": {"n": 5}}
    created = await gw.post(DEPLOYMENTS, json=body)
    assert (await settle(gw, created))["state"] == "COMPLETED"
    url = f"{DEPLOYMENTS}/{created.json()['deploymentId']}"

    before = rss_bytes()
    operation = await settle(gw, await gw.patch(url, json={"values": BOMB}))
    growth = rss_bytes() - before
    print(f"upgrade render bomb: gateway RSS growth {growth >> 20} MiB")

    assert_memory_cap(operation)
    assert growth < 50 * 1024 * 1024, growth
    assert release_records(k8s_emulator, "fine", NS) == [(1, "deployed")]
    config_map = k8s_emulator.get("v1", "ConfigMap", "fine-loop", NS)
    assert config_map is not None and config_map["data"]["v"] == "x" * 5

    # The way on: mark it failed, then values within the caps still upgrade.
    failed = await gw.post(f"/o2dms/v1/operations/{operation['operationId']}/fail")
    assert failed.status_code in (200, 202), failed.text
    done = await settle(gw, await gw.patch(url, json={"values": {"n": 7}}))
    assert done["state"] == "COMPLETED", done
    assert release_records(k8s_emulator, "fine", NS) == [(1, "superseded"), (2, "deployed")]

"""Render bombs at install, upgrade and scale, through the gateway's HTTP API (the Helm adapter
loaded by its entry point, the real Helm SDK, the Kubernetes API emulator).

Helm renders a chart inside its install and upgrade calls, so the adapter makes those calls in
a persistent capped render worker (:class:`netweave_helm.rendering.RenderPool`), never in the
gateway: a chart that passed the upload's lint and blows up only with a value set kills its
worker over the memory or CPU cap, Helm has stored nothing yet, and the operation ends
FAILED_TEMP with the cap's 400 problem. The gateway (this process: the app runs in it) does not
grow. A worker killed from outside mid-render costs a retry, and the pool goes on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from chartkit import build_chart
from killedhelm import release_records
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator
from netweave_helm.adapter import HelmAdapter
from netweave_helm.config import RenderLimits
from netweave_helm.rendering import RenderPool, render_preview

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
DEPLOYMENTS = "/o2dms/v1/nfDeployments"
SETTLED = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})
NS = "bombs"
#: A clean template whose cost the values decide: ``n`` characters of output (n = 2e7 needs
#: well over the memory cap); ``spin`` loops that print nothing (CPU only); a replica count
#: over 100 sets off the same bomb as a large ``n`` (a scale bomb).
LOOP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-loop\n"
    'data:\n  v: "{{ range until (int .Values.n) }}x{{ end }}'
    "{{ range until (int .Values.spin) }}{{ range until 1000 }}{{ end }}{{ end }}"
    '{{ if gt (int .Values.replicaCount) 100 }}{{ range until 20000000 }}x{{ end }}{{ end }}"\n'
)
DEFAULTS = {"n": 1, "spin": 0, "replicaCount": 1}
BOMB = {"n": 20_000_000}
MEMORY_CAP = 256 * 1024 * 1024
#: The gateway's own growth allowed while a bomb is refused: generous (the bench prints the
#: figure; in-process the same bomb grew the gateway by ~750 MB).
RSS_BOUND = 50 * 1024 * 1024


def rss_bytes() -> int:
    """This process's resident set (the gateway runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def gateway_config(kubeconfig: Path, **render: Any) -> dict[str, Any]:
    return {
        "name": "helm-local",
        "type": "helm",
        "default": True,
        "config": {
            "storage": {"kind": "local"},
            "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
            "timeouts": {"write": 30},
            "render": {
                "memoryBytes": MEMORY_CAP,
                # Also the upload lint's wall-clock limit: enough on a loaded machine.
                "timeSeconds": 2.5,
                "maxOutputBytes": 1024 * 1024,
                **render,
            },
        },
    }


def inline_kubeconfig(config: dict[str, Any]) -> dict[str, Any]:
    cluster = config["config"]["cluster"]
    cluster["kubeconfigContent"] = Path(cluster.pop("kubeconfig")).read_text()
    return config


@pytest.fixture
async def gw(tmp_path: Path, k8s_kubeconfig: Path) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(tmp_path / "data", dms=[gateway_config(k8s_kubeconfig)])
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


def adapter_of(gw: GatewayClient) -> HelmAdapter:
    adapter = gw.registry.adapters["helm-local"]
    assert isinstance(adapter, HelmAdapter)
    return adapter


async def loop_package(gw: GatewayClient, tmp_path: Path) -> str:
    archive = build_chart(
        tmp_path / "loop", "loop", "1.0.0", values=DEFAULTS, templates={"cm.yaml": LOOP}
    )
    with archive.open("rb") as handle:
        response = await gw.post(
            PACKAGES,
            data={"name": "loop", "artifactVersion": "1.0.0"},
            files={"chart": (archive.name, handle, "application/gzip")},
        )
    assert response.status_code == 201, response.text  # the lint renders the defaults: harmless
    return str(response.json()["packageId"])


async def settle(gw: GatewayClient, response: Any) -> dict[str, Any]:
    assert response.status_code in (201, 202), response.text
    # Generous: on a loaded machine a CPU cap of 5 s takes far longer in wall-clock time.
    return await gw.wait_operation(gw.operation_id(response), SETTLED, wait_seconds=240)


def assert_refused(operation: dict[str, Any], cap: str) -> None:
    assert operation["state"] == "FAILED_TEMP", operation
    problem = operation["error"]
    assert problem["status"] == 400, problem
    assert problem["details"]["cap"] == cap, problem
    setting = {"memory": "render.memoryBytes", "time": "render.timeSeconds"}[cap]
    assert setting in problem["detail"], problem


async def create(gw: GatewayClient, package: str, name: str, values: dict[str, Any]) -> Any:
    body = {"name": name, "namespace": NS, "packageId": package, "values": values}
    return await gw.post(DEPLOYMENTS, json=body)


async def test_install_bombs_are_refused_in_a_worker_and_nothing_is_installed(
    gw: GatewayClient, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    package = await loop_package(gw, tmp_path)
    # One install within the caps first: the gateway loads the Helm SDK and its clients for
    # its reads once (tens of MB), which is not the bomb's doing.
    warm = await settle(gw, await create(gw, package, "warm", {"n": 3}))
    assert warm["state"] == "COMPLETED", warm
    workers = adapter_of(gw)._render_pool().pids()
    assert len(workers) == 1 and os.getpid() not in workers

    before = rss_bytes()
    started = time.monotonic()
    memory = await settle(gw, await create(gw, package, "boom", BOMB))
    took = time.monotonic() - started
    growth = rss_bytes() - before
    print(f"install memory bomb: refused in {took:.2f} s, gateway RSS growth {growth >> 20} MiB")
    assert_refused(memory, "memory")
    assert growth < RSS_BOUND, growth

    # A loop that prints nothing: only the CPU cap (twice render.timeSeconds: 5 s) stops it.
    spin = await settle(gw, await create(gw, package, "spin", {"spin": 200_000}))
    assert_refused(spin, "time")

    # Helm never stored them, nothing reached the cluster, and the worker died, not the
    # gateway: a fresh one installs the next chart.
    for name in ("boom", "spin"):
        assert release_records(k8s_emulator, name, NS) == []
        assert k8s_emulator.get("v1", "ConfigMap", f"{name}-loop", NS) is None
    assert not set(workers) & set(adapter_of(gw)._render_pool().pids())
    after = await settle(gw, await create(gw, package, "after", {"n": 4}))
    assert after["state"] == "COMPLETED", after
    assert release_records(k8s_emulator, "after", NS) == [(1, "deployed")]


async def test_upgrade_and_scale_bombs_leave_the_release_as_it_was(
    gw: GatewayClient, tmp_path: Path, k8s_emulator: KubernetesEmulator
) -> None:
    package = await loop_package(gw, tmp_path)
    created = await create(gw, package, "fine", {"n": 5})
    assert (await settle(gw, created))["state"] == "COMPLETED"
    url = f"{DEPLOYMENTS}/{created.json()['deploymentId']}"

    def unchanged() -> None:
        assert release_records(k8s_emulator, "fine", NS) == [(1, "deployed")]
        config_map = k8s_emulator.get("v1", "ConfigMap", "fine-loop", NS)
        assert config_map is not None and config_map["data"]["v"] == "x" * 5

    upgrade = await settle(gw, await gw.patch(url, json={"values": BOMB}))
    assert_refused(upgrade, "memory")
    unchanged()
    deployment = (await gw.get(url)).json()
    assert deployment["status"] == "DEPLOYED", deployment

    # The way on from FAILED_TEMP: mark it failed; then a scale that sets the bomb off.
    failed = await gw.post(f"/o2dms/v1/operations/{upgrade['operationId']}/fail")
    assert failed.status_code in (200, 202), failed.text
    scale = await settle(gw, await gw.post(f"{url}/scale", json={"replicas": 200}))
    assert_refused(scale, "memory")
    unchanged()
    failed = await gw.post(f"/o2dms/v1/operations/{scale['operationId']}/fail")
    assert failed.status_code in (200, 202), failed.text

    # Values within the caps still upgrade.
    done = await settle(gw, await gw.patch(url, json={"values": {"n": 7}}))
    assert done["state"] == "COMPLETED", done
    assert release_records(k8s_emulator, "fine", NS) == [(1, "superseded"), (2, "deployed")]


async def test_a_worker_killed_mid_render_costs_a_retry_and_the_pool_recovers(
    tmp_path: Path, k8s_kubeconfig: Path, k8s_emulator: KubernetesEmulator
) -> None:
    # One worker, so the one rendering is known; a render of a few seconds of CPU, within the
    # caps, so it can be caught mid-way. An inline kubeconfig: the SDK keeps it in a file of
    # the worker's, which must outlive each request (the second install on the same worker).
    config = inline_kubeconfig(gateway_config(k8s_kubeconfig, workers=1, timeSeconds=30))
    settings = gateway_settings(tmp_path / "data", dms=[config])
    async with running_gateway(tmp_path, settings=settings) as gw:
        package = await loop_package(gw, tmp_path)
        pool = adapter_of(gw)._render_pool()
        response = await create(gw, package, "slow", {"spin": 30_000})
        victim = await busy_worker(pool.pids, deadline=time.monotonic() + 30)
        os.kill(victim, signal.SIGKILL)

        operation = await settle(gw, response)
        assert operation["state"] == "COMPLETED", operation
        assert release_records(k8s_emulator, "slow", NS) == [(1, "deployed")]
        assert pool.pids() and victim not in pool.pids()
        again = await settle(gw, await create(gw, package, "again", {"n": 2}))
        assert again["state"] == "COMPLETED", again


def cpu_ticks(pid: int) -> int:
    """CPU time process ``pid`` used so far, in clock ticks (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def busy_worker(pids: Any, deadline: float) -> int:
    """The pool's worker once it has spent 0.3 s of CPU on the current render."""
    ticks = os.sysconf("SC_CLK_TCK")
    start: dict[int, int] = {}
    while time.monotonic() < deadline:
        for pid in pids():
            used = cpu_ticks(pid)
            start.setdefault(pid, used)
            if used - start[pid] >= 0.3 * ticks:
                return int(pid)
        await asyncio.sleep(0.02)
    raise AssertionError("no render worker got busy")


async def test_a_worker_is_started_with_the_adapter_and_serves_the_first_install(
    gw: GatewayClient, tmp_path: Path
) -> None:
    # Started in the background when the adapter starts (it has a cluster), before any
    # request: the first install need not wait for a worker to load the Helm SDK.
    pool = adapter_of(gw)._render_pool()
    for _ in range(600):  # bounded: 30 s
        if pool.pids():
            break
        await asyncio.sleep(0.05)
    started = pool.pids()
    assert len(started) == 1
    package = await loop_package(gw, tmp_path)
    first = await settle(gw, await create(gw, package, "first", {}))
    assert first["state"] == "COMPLETED", first
    assert pool.pids() == started


async def test_a_request_while_the_start_up_worker_loads_waits_for_it(tmp_path: Path) -> None:
    # A request that finds no idle worker while the adapter's start-up worker is still loading
    # the Helm SDK takes that worker, not a second one (a CI trial found two after the first
    # install on a loaded machine); a second concurrent request does start its own.
    chart = build_chart(
        tmp_path / "chart", "loop", "1.0.0", values=DEFAULTS, templates={"cm.yaml": LOOP}
    )
    work = tmp_path / "work"
    work.mkdir()
    pool = RenderPool(RenderLimits(), 4, work)
    try:

        async def preview(name: str) -> dict[str, Any]:
            return await render_preview(
                chart,
                release=name,
                namespace=NS,
                values={},
                upgrade=False,
                cluster=None,
                caps=pool.caps,
                time_limit=60,
                work_dir=work,
                pool=pool,
            )

        pool.prestart(1)
        assert (await preview("one"))["manifest"] is not None
        await asyncio.gather(*pool._starting)  # the start-up worker's start, if still going
        assert len(pool.pids()) == 1
        started = pool.pids()
        await asyncio.gather(preview("two"), preview("three"))
        assert len(pool.pids()) == 2 and set(started) < set(pool.pids())
    finally:
        await pool.close()

"""The reconciler at scale: N Helm releases (default 5 000) watched by one replica.

``python bench_health.py`` (``HOME`` a temporary directory; ``NETWEAVE_BENCH_HEALTH_N`` to
change N) starts the Kubernetes API emulator in a child process (so this process's CPU is the
gateway's alone), installs N releases of the shared ``hello-world`` chart (a ServiceAccount, a
Service, a Deployment) with the Helm adapter (real Helm SDK) over 50 namespaces, records them
in a SQLite store as the gateway would, and starts the reconciler (Helm: list+watch with
bookmarks; ``resync`` 3 600 s) on one replica. It prints:

1. the initial pass (every deployment read once, as after a start): its duration;
2. a quiet minute: requests per minute the reconciler sends to the cluster (the emulator's own
   count) and the gateway process's CPU share of one core (user + system time of all its
   threads, the Helm SDK's included);
3. 30 changes behind the gateway's back (a Deployment's replicas patched with the
   ``kubernetes`` client, one every 0.5 s): the delay from the patch to the reconciler's
   record of the drift (the moment its ``DeploymentDriftDetected`` event is written to the
   outbox in the gateway), p50, p99 and max.

Targets (issue 22): a watch-based reconciler adds <= 5 % of one core and records a change
within 10 s at p99.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

N = int(os.environ.get("NETWEAVE_BENCH_HEALTH_N", "5000"))
NAMESPACES = 50
QUIET_SECONDS = float(os.environ.get("NETWEAVE_BENCH_HEALTH_QUIET", "60"))
CHANGES = 30


def _emulator(conn: Any, kubeconfig: str) -> None:
    from netweave.testing.k8s import KubernetesEmulator

    emu = KubernetesEmulator().start()
    emu.write_kubeconfig(Path(kubeconfig))
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "count":
            conn.send(len(emu.requests))
        elif command == "stop":
            emu.stop()
            conn.send("stopped")
            return


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _shared_charts() -> Path:
    shared = os.environ.get("NETWEAVE_SHARED_DIR")
    if shared:
        return Path(shared) / "charts"
    return Path(__file__).resolve().parents[2] / "docs" / "examples"


async def main(work: Path) -> None:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from netweave.adapters import DeploymentSpec, OperationContext, PackageUpload
    from netweave.config.plugins import make_plugin_manager
    from netweave.config.registry import AdapterRegistry
    from netweave.models import DeploymentStatus
    from netweave.operations.events import HookBus
    from netweave.reconcile import Reconciler
    from netweave.store import DeploymentRecord
    from netweave.store.sql import create_store
    from netweave_helm.adapter import HelmAdapter
    from netweave_helm.config import HelmConfig

    kubeconfig = work / "kubeconfig"
    parent, child = multiprocessing.Pipe()
    emulator = multiprocessing.get_context("spawn").Process(
        target=_emulator, args=(child, str(kubeconfig)), daemon=True
    )
    emulator.start()
    assert parent.recv() == "ready"

    def count() -> int:
        parent.send("count")
        return int(parent.recv())

    adapter = HelmAdapter(
        "helm",
        HelmConfig.model_validate(
            {
                "storage": {"kind": "local", "repositoryDir": str(work / "charts")},
                "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
            }
        ),
    )
    await adapter.start()
    chart = _shared_charts() / "hello-world-0.1.0.tgz"
    package = await adapter.upload_package(
        PackageUpload(name="hello-world", version="0.1.0", archive=chart)
    )

    started = time.monotonic()
    limit = asyncio.Semaphore(16)
    refs: list[tuple[str, str]] = []

    async def install(i: int) -> None:
        name, namespace = f"r{i:05d}", f"bench-{i % NAMESPACES:02d}"
        async with limit:
            info = await adapter.create_deployment(
                DeploymentSpec(f"d{i}", name, namespace, package, {}),
                OperationContext(f"op{i}", f"key{i}"),
            )
        refs.append((f"d{i:05d}", info.backend_ref))

    await asyncio.gather(*(install(i) for i in range(N)))
    print(f"installed {N} releases in {time.monotonic() - started:.0f} s", flush=True)

    store = create_store(f"sqlite:///{work / 'netweave.db'}")
    await store.migrate()
    now = datetime.now(UTC)
    ids: dict[str, str] = {}
    for deployment_id, ref in refs:
        ids[ref] = deployment_id
        await store.add_deployment(
            DeploymentRecord(
                deployment_id=deployment_id,
                name=ref.split("/")[1],
                namespace=ref.split("/")[0],
                package_id="hello-world-0.1.0",
                package_version="0.1.0",
                adapter="helm",
                status=DeploymentStatus.DEPLOYED,
                created_at=now,
                updated_at=now,
                backend_ref=ref,
                revision=1,
            )
        )

    drift_seen: dict[str, float] = {}

    def observed(deployment_id: str, record: DeploymentRecord) -> None:
        if record.drift and deployment_id not in drift_seen:
            drift_seen[deployment_id] = time.monotonic()

    reconciler = Reconciler(
        store,
        AdapterRegistry({"helm": adapter}),
        HookBus(make_plugin_manager()),
        owner=f"bench-{uuid.uuid4().hex[:6]}",
        resync=3600.0,
        rate=200.0,
        concurrency=16,
        on_observed=observed,
    )
    started = time.monotonic()
    reconciler.start()
    deadline = started + 3600
    while reconciler.stats.observations < N and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)  # a counter, bounded by the deadline
    print(
        f"initial pass: {reconciler.stats.observations} deployments read in "
        f"{time.monotonic() - started:.0f} s",
        flush=True,
    )
    await asyncio.sleep(5)  # the last reads' writes

    before_requests, before_cpu, t0 = count(), _cpu(), time.monotonic()
    await asyncio.sleep(QUIET_SECONDS)
    elapsed = time.monotonic() - t0
    requests = count() - before_requests
    cpu = _cpu() - before_cpu
    print(
        f"quiet {elapsed:.0f} s with {len(refs)} deployments: "
        f"{requests / elapsed * 60:.1f} cluster requests/min, "
        f"gateway CPU {cpu / elapsed * 100:.2f} % of one core",
        flush=True,
    )

    api = k8s_config.new_client_from_config(str(kubeconfig))
    apps = k8s_client.AppsV1Api(api)
    changed: dict[str, float] = {}
    for i in range(CHANGES):
        ref = refs[(i * 7919) % len(refs)][1]
        namespace, name = ref.split("/")
        await asyncio.to_thread(
            apps.patch_namespaced_deployment,
            f"{name}-hello-world",
            namespace,
            {"spec": {"replicas": 2}},
        )
        changed[ids[ref]] = time.monotonic()
        await asyncio.sleep(0.5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(d in drift_seen for d in changed):  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # bounded by the deadline
    delays = sorted(drift_seen[d] - t for d, t in changed.items() if d in drift_seen)
    missing = len(changed) - len(delays)
    if delays:
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(
            f"change -> drift recorded: p50 {statistics.median(delays):.2f} s, "
            f"p99 {p99:.2f} s, max {delays[-1]:.2f} s over {len(delays)} changes"
            + (f" ({missing} never seen within 60 s)" if missing else ""),
            flush=True,
        )
    print(
        f"RESULT n={len(refs)} cpu_percent={cpu / elapsed * 100:.2f} "
        f"requests_per_min={requests / elapsed * 60:.1f} "
        f"p99_s={(delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else -1):.2f} "
        f"missing={missing}",
        flush=True,
    )
    api.close()
    await reconciler.stop()
    await adapter.stop()
    await store.close()
    parent.send("stop")
    parent.recv()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="netweave-bench-health-") as tmp:
        asyncio.run(main(Path(tmp)))
    sys.exit(0)

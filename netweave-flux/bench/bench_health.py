"""The reconciler at scale with the Flux watch: N HelmReleases (default 5 000) on one replica.

``python bench_health.py`` (``HOME`` a temporary directory; ``NETWEAVE_BENCH_HEALTH_N`` to
change N, ``NETWEAVE_BENCH_HEALTH_QUIET`` the quiet window's seconds; the Flux CRDs from
``$NETWEAVE_SHARED_DIR/contracts/flux``) starts the Kubernetes API emulator with the Flux CRDs
and the simulated Flux controllers (``tests/flux_sim.py``: helm-controller applies one
Deployment per release, the emulator's controllers run its Pods, and keeps Helm's release
storage Secrets) in a child process, so this process's CPU is the gateway's alone. It creates N
HelmReleases over 50 namespaces with the Flux adapter, waits until helm-controller reports them
all ``Ready``, records them in a SQLite store as the gateway would, and starts the reconciler
on one replica: Flux is watched (list+watch with bookmarks of the adapter's HelmReleases and
Kustomizations and of the Deployments, StatefulSets, DaemonSets and Jobs Flux applied;
``resync`` 3 600 s). It prints, each with the machine's load average beside it:

1. the initial pass (every deployment read once, as after a start): its duration;
2. a quiet window (60 s): requests per minute the reconciler sends to the cluster (the
   emulator's own count) and the gateway process's CPU share of one core (user + system time
   of all its threads);
3. 30 changes behind the gateway's back (a release's Deployment deleted with the
   ``kubernetes`` client, one every 0.5 s — Flux keeps saying ``Ready``, only the watch of the
   workloads sees it): the delay from the delete to the reconciler's record of the drift (the
   moment its ``DeploymentDriftDetected`` event is written to the outbox), p50, p99 and max.

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
REPLICAS = 1
TESTS = Path(__file__).resolve().parents[1] / "tests"
HR_API = "helm.toolkit.fluxcd.io/v2"


def _crds() -> list[Path]:
    shared = os.environ.get("NETWEAVE_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[3] / "shared"
    files = sorted((root / "contracts" / "flux").glob("*.yaml"))
    if not files:
        raise SystemExit(f"no Flux CRDs in {root / 'contracts' / 'flux'} (NETWEAVE_SHARED_DIR)")
    return files


def _emulator(conn: Any, kubeconfig: str, crds: list[str]) -> None:
    sys.path.insert(0, str(TESTS))
    from flux_sim import FluxSimulator
    from netweave.testing.k8s import KubernetesEmulator

    emu = KubernetesEmulator().start()
    for path in crds:
        emu.install_crd(Path(path))
    for ns in ["flux-system", *(f"bench-{i:02d}" for i in range(NAMESPACES))]:
        emu.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    FluxSimulator(emu)
    emu.write_kubeconfig(Path(kubeconfig))
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "count":
            conn.send(len(emu.requests))
        elif command == "released":
            released = 0
            for hr in emu.list(HR_API, "HelmRelease"):
                conds = {c.get("type"): c for c in (hr.get("status") or {}).get("conditions") or []}
                released += (conds.get("Ready") or {}).get("status") == "True"
            conn.send(released)
        elif command == "stop":
            emu.stop()
            conn.send("stopped")
            return


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"[load {one:.2f} {five:.2f} {fifteen:.2f}]"


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
    from netweave_flux.adapter import FluxAdapter
    from netweave_flux.config import FluxConfig

    kubeconfig = work / "kubeconfig"
    parent, child = multiprocessing.Pipe()
    emulator = multiprocessing.get_context("spawn").Process(
        target=_emulator,
        args=(child, str(kubeconfig), [str(p) for p in _crds()]),
        daemon=True,
    )
    emulator.start()
    assert parent.recv() == "ready"

    def ask(command: str) -> int:
        parent.send(command)
        return int(parent.recv())

    adapter = FluxAdapter(
        "flux",
        FluxConfig.model_validate(
            {"mode": "cluster", "cluster": {"kubeconfig": str(kubeconfig)}, "interval": "1h"}
        ),
    )
    await adapter.start()
    package = await adapter.upload_package(
        PackageUpload(
            name="podinfo",
            version="6.5.0",
            package_type="helm",
            package_uri="https://stefanprodan.github.io/podinfo",
            source={"chart": "podinfo"},
        )
    )
    values = {"replicaCount": REPLICAS}

    started = time.monotonic()
    limit = asyncio.Semaphore(16)
    refs: list[tuple[str, str]] = []

    async def create(i: int) -> None:
        name, namespace = f"r{i:05d}", f"bench-{i % NAMESPACES:02d}"
        async with limit:
            info = await adapter.create_deployment(
                DeploymentSpec(f"d{i:05d}", name, namespace, package, dict(values)),
                OperationContext(f"op{i}", f"key{i}"),
            )
        refs.append((f"d{i:05d}", info.backend_ref))

    await asyncio.gather(*(create(i) for i in range(N)))
    deadline = time.monotonic() + 3600
    released = 0
    while time.monotonic() < deadline:
        released = await asyncio.to_thread(ask, "released")
        if released >= N:
            break
        await asyncio.sleep(2)
    print(
        f"created {N} HelmReleases, {released} released by the simulated helm-controller in "
        f"{time.monotonic() - started:.0f} s {_load()}",
        flush=True,
    )

    store = create_store(f"sqlite:///{work / 'netweave.db'}")
    await store.migrate()
    now = datetime.now(UTC)
    ids: dict[str, str] = {}
    for deployment_id, ref in refs:
        ids[ref] = deployment_id
        namespace, _, name = ref.split("/")
        await store.add_deployment(
            DeploymentRecord(
                deployment_id=deployment_id,
                name=name,
                namespace=namespace,
                package_id="podinfo-6.5.0",
                package_version="6.5.0",
                adapter="flux",
                status=DeploymentStatus.DEPLOYED,
                created_at=now,
                updated_at=now,
                backend_ref=ref,
                revision=1,
                values=dict(values),
            )
        )

    drift_seen: dict[str, float] = {}

    def observed(deployment_id: str, record: DeploymentRecord) -> None:
        if record.drift and deployment_id not in drift_seen:
            drift_seen[deployment_id] = time.monotonic()

    reconciler = Reconciler(
        store,
        AdapterRegistry({"flux": adapter}),
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
        f"{time.monotonic() - started:.0f} s {_load()}",
        flush=True,
    )
    early_drift = len(drift_seen)
    await asyncio.sleep(5)  # the last reads' writes

    before_requests = await asyncio.to_thread(ask, "count")
    before_cpu, t0 = _cpu(), time.monotonic()
    await asyncio.sleep(QUIET_SECONDS)
    elapsed = time.monotonic() - t0
    requests = await asyncio.to_thread(ask, "count") - before_requests
    cpu = _cpu() - before_cpu
    print(
        f"quiet {elapsed:.0f} s with {len(refs)} deployments: "
        f"{requests / elapsed * 60:.1f} cluster requests/min, "
        f"gateway CPU {cpu / elapsed * 100:.2f} % of one core {_load()}",
        flush=True,
    )

    api = k8s_config.new_client_from_config(str(kubeconfig))
    apps = k8s_client.AppsV1Api(api)
    changed: dict[str, float] = {}
    for i in range(CHANGES):
        ref = refs[(i * 7919) % len(refs)][1]
        if ids[ref] in changed:
            continue
        namespace, _, name = ref.split("/")
        await asyncio.to_thread(apps.delete_namespaced_deployment, name, namespace)
        changed[ids[ref]] = time.monotonic()
        await asyncio.sleep(0.5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(d in drift_seen for d in changed):  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # bounded by the deadline
    delays = sorted(drift_seen[d] - t for d, t in changed.items() if d in drift_seen)
    missing = len(changed) - len(delays)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else -1.0
    if delays:
        print(
            f"change -> drift recorded: p50 {statistics.median(delays):.2f} s, "
            f"p99 {p99:.2f} s, max {delays[-1]:.2f} s over {len(delays)} changes {_load()}"
            + (f" ({missing} never seen within 60 s)" if missing else ""),
            flush=True,
        )
    print(
        f"RESULT n={len(refs)} cpu_percent={cpu / elapsed * 100:.2f} "
        f"requests_per_min={requests / elapsed * 60:.1f} p99_s={p99:.2f} missing={missing} "
        f"drift_before_changes={early_drift} load1={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    api.close()
    await reconciler.stop()
    await adapter.stop()
    await store.close()
    parent.send("stop")
    parent.recv()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="netweave-bench-flux-health-") as tmp:
        asyncio.run(main(Path(tmp)))
    sys.exit(0)

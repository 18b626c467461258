"""The polled reconciler at scale: N Argo CD Applications (default 5 000) on one replica.

``python bench_health.py`` (``HOME`` a temporary directory; ``NETWEAVE_BENCH_HEALTH_N`` to
change N, ``NETWEAVE_BENCH_HEALTH_INTERVAL`` the poll interval, default 30 s as
``reconcile.interval``) starts the Argo CD API emulator of the adapter's tests in a child
process (so this process's CPU is the gateway's alone; the emulator validates every request
against Argo CD's swagger.json as in the tests, and every answer too unless
``NETWEAVE_BENCH_HEALTH_STRICT=0`` — validating a list of thousands of apps takes the emulator
seconds a real argocd-server does not spend; its controller is stepped only by the bench). N
Applications of one Helm chart, as the adapter's ``create`` builds them (manual sync, the
default), are created and synced in the emulator (through its own handlers: the Application
CRD is checked, without N HTTP round trips), and the deployments are recorded in the gateway's
SQLite store as the gateway would. Then the real gateway starts in-process (the API, the
reconciler on one replica, the operation and notification workers; product defaults but the
interval), with a subscriber to ``DeploymentDriftDetected`` on 127.0.0.1. It prints, each with
the load average beside it:

1. the initial pass (every deployment observed once): its duration, and the duration of one
   Application list of N apps (a poll round is Application lists, ``BATCH_READS``);
2. a quiet window (default 60 s): requests per minute the gateway sends to argocd-server (the
   emulator's own count, Application lists apart) and the gateway process's CPU share of one
   core (user + system time of all its threads);
3. 30 changes behind the gateway's back (a Deployment edited in the cluster: Argo CD compares
   the app OutOfSync), spread over two intervals: the delay from the change to the
   ``DeploymentDriftDetected`` notification received by the subscriber, p50, p99 and max;
4. the same quiet window on the same store with the reconciler off (``reconcile.enabled:
   false``): the gateway's CPU share without it; what the reconciler adds is the difference.

A polled reconciler notifies within about one interval (plus the round's reads and the
notification worker's poll); issue 22's 10 s p99 target is the watch-based one's.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

N = int(os.environ.get("NETWEAVE_BENCH_HEALTH_N", "5000"))
INTERVAL = float(os.environ.get("NETWEAVE_BENCH_HEALTH_INTERVAL", "30"))
QUIET_SECONDS = float(os.environ.get("NETWEAVE_BENCH_HEALTH_QUIET", "60"))
STRICT = os.environ.get("NETWEAVE_BENCH_HEALTH_STRICT", "1") != "0"
CHANGES = 30
CHARTS = "https://charts.example.test/stable"
TESTS = Path(__file__).resolve().parents[1] / "tests"


def _emulator(conn: Any, strict: bool) -> None:
    sys.path.insert(0, str(TESTS))
    from argo_emulator import ArgoEmulator, Served  # type: ignore[import-not-found]

    emu = ArgoEmulator()
    emu.add_helm_repo(CHARTS, {"web": ["1.0.0"]})
    if not strict:
        emu._check_response = lambda *args: None  # requests are still validated
    served = Served(emu)
    conn.send(served.start())
    while True:  # commands until "stop"
        command, *args = conn.recv()
        if command == "count":
            lists = sum(1 for r in emu.requests if r.operation_id == "ApplicationService_List")
            conn.send((len(emu.requests), lists))
        elif command == "seed":
            # What the adapter's create does (the app, then a sync), through the handlers.
            for manifest in args[0]:
                with emu.lock:  # the server thread runs; the handlers expect the lock held
                    query = {"upsert": "false", "validate": "true"}
                    app = emu._op_ApplicationService_Create({}, query, manifest)
                    name, namespace = app["metadata"]["name"], app["metadata"]["namespace"]
                    body = {"name": name, "appNamespace": namespace, "project": "default"}
                    emu._op_ApplicationService_Sync({"name": name}, {}, body)
                    emu.settle(name, namespace)
            states = {
                (a["status"]["sync"]["status"], a["status"]["health"]["status"])
                for a in emu.apps.values()
            }
            conn.send((len(emu.apps), sorted(states), list(emu.violations)))
        elif command == "edit":
            emu.edit_live(args[0], "Deployment", args[0], {"spec": {"replicas": 5}})
            conn.send("edited")
        elif command == "stop":
            conn.send(list(emu.violations))
            served.stop()
            return


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load {one:.2f} / {five:.2f}]"


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


async def main(work: Path) -> None:
    from netweave.adapters import DeploymentSpec, PackageUpload
    from netweave.config import OperationSettings, ReconcileSettings
    from netweave.models import DeploymentStatus
    from netweave.models.paths import API_PREFIX
    from netweave.store import DeploymentRecord
    from netweave.store.sql import create_store
    from netweave.testing.etsi_notify import callback_sink
    from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
    from netweave_argocd.adapter import ArgoCDAdapter
    from netweave_argocd.config import ArgoCDConfig

    parent, child = multiprocessing.Pipe()
    emulator = multiprocessing.get_context("spawn").Process(
        target=_emulator, args=(child, STRICT), daemon=True
    )
    emulator.start()
    url = parent.recv()

    def ask(*command: Any) -> Any:
        parent.send(command)
        return parent.recv()

    config = {"serverUrl": url, "authToken": "static-token", "defaultProject": "default"}
    adapter = ArgoCDAdapter("argo", ArgoCDConfig.model_validate(config))
    await adapter.start()
    package = await adapter.upload_package(
        PackageUpload(
            name="web",
            version="1.0.0",
            package_type="helm",
            package_uri=CHARTS,
            source={"chart": "web"},
        )
    )
    started = time.monotonic()
    specs = [
        DeploymentSpec(f"d{i:05d}", f"a{i:05d}", f"bench-{i % 50:02d}", package, {})
        for i in range(N)
    ]
    refs = {s.deployment_id: f"argocd/{s.name}" for s in specs}
    namespaces = {s.deployment_id: s.namespace for s in specs}
    count, states, violations = ask("seed", [adapter.application(s) for s in specs])
    print(
        f"created and synced {count} Applications in {time.monotonic() - started:.0f} s: "
        f"(sync, health) {states} {_load()}",
        flush=True,
    )
    assert not violations, violations[:3]
    list_started = time.monotonic()
    await adapter.get_deployments(list(refs.values())[:1])
    list_seconds = time.monotonic() - list_started
    await adapter.stop()

    store_url = f"sqlite:///{work / 'netweave.db'}"
    store = create_store(store_url)
    await store.migrate()
    now = datetime.now(UTC)
    for deployment_id, ref in refs.items():
        await store.add_deployment(
            DeploymentRecord(
                deployment_id=deployment_id,
                name=ref.split("/")[1],
                namespace=namespaces[deployment_id],
                package_id=package.backend_ref,
                package_version="1.0.0",
                adapter="argo",
                status=DeploymentStatus.DEPLOYED,
                created_at=now,
                updated_at=now,
                backend_ref=ref,
                revision=1,
            )
        )
    await store.close()

    settings = gateway_settings(
        work / "data",
        dms=[{"name": "argo", "type": "argocd", "default": True, "config": config}],
        reconcile=ReconcileSettings(interval=INTERVAL),
    )
    settings.operations = OperationSettings()  # the product's, not the tests' fast polling
    settings.notifications.allow_private_callbacks = True  # the subscriber is on loopback
    with callback_sink() as sink:
        async with running_gateway(
            work, settings=settings, store_url=store_url, client_class=GatewayClient
        ) as gw:
            response = await gw.post(
                f"{API_PREFIX}/subscriptions",
                json={
                    "callbackUri": sink.url,
                    "filter": {"eventTypes": ["DeploymentDriftDetected"]},
                },
            )
            assert response.status_code == 201, response.text
            reconciler: Any = gw.app.state.services.reconciler
            started = time.monotonic()
            deadline = started + 10 * INTERVAL + 600
            while reconciler.stats.observations < N and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.5)  # a counter, bounded by the deadline
            print(
                f"initial pass: {reconciler.stats.observations} deployments observed in "
                f"{time.monotonic() - started:.0f} s (spread over one interval, {INTERVAL:.0f} s); "
                f"one Application list of {N} apps: {list_seconds:.2f} s "
                f"(emulator answers {'validated' if STRICT else 'not validated'}) {_load()}",
                flush=True,
            )
            changes_before = reconciler.stats.changes
            await asyncio.sleep(5)  # the last reads' writes

            (requests0, lists0), cpu0, t0 = ask("count"), _cpu(), time.monotonic()
            await asyncio.sleep(QUIET_SECONDS)
            elapsed = time.monotonic() - t0
            requests1, lists1 = ask("count")
            cpu = _cpu() - cpu0
            requests, lists = requests1 - requests0, lists1 - lists0
            print(
                f"quiet {elapsed:.0f} s with {N} deployments, interval {INTERVAL:.0f} s: "
                f"{requests / elapsed * 60:.1f} Argo CD requests/min "
                f"({lists / elapsed * 60:.1f} Application lists/min) {_load()}",
                flush=True,
            )
            print(
                f"gateway CPU {cpu / elapsed * 100:.2f} % of one core {_load()}; "
                f"records changed by the reconciler meanwhile: "
                f"{reconciler.stats.changes - changes_before}",
                flush=True,
            )

            names = {d: r.split("/")[1] for d, r in refs.items()}
            chosen = [sorted(refs)[(i * 7919) % N] for i in range(CHANGES)]
            changed: dict[str, float] = {}
            seen: dict[str, float] = {}

            def collect() -> None:
                for body in sink.unique():
                    deployment_id = body.get("deploymentId")
                    if deployment_id in changed and deployment_id not in seen:
                        seen[deployment_id] = time.monotonic()

            gap = 2 * INTERVAL / CHANGES
            for deployment_id in chosen:
                changed[deployment_id] = time.monotonic()
                assert ask("edit", names[deployment_id]) == "edited"
                step_end = time.monotonic() + gap
                while time.monotonic() < step_end:
                    collect()
                    await asyncio.sleep(0.02)  # bounded by the step's end
            deadline = time.monotonic() + 2 * INTERVAL + 60
            while time.monotonic() < deadline and len(seen) < len(changed):
                collect()
                await asyncio.sleep(0.02)  # bounded by the deadline
            delays = sorted(seen[d] - t for d, t in changed.items() if d in seen)
            missing = len(changed) - len(delays)
            if delays:
                print(
                    f"change -> DeploymentDriftDetected received: p50 "
                    f"{statistics.median(delays):.2f} s, p99 {_p99(delays):.2f} s, max "
                    f"{delays[-1]:.2f} s over {len(delays)} changes"
                    + (f" ({missing} never notified)" if missing else "")
                    + f" {_load()}",
                    flush=True,
                )
    # The same gateway on the same store without the reconciler: what it adds is the difference.
    settings.reconcile = ReconcileSettings(enabled=False)
    async with running_gateway(
        work, settings=settings, store_url=store_url, client_class=GatewayClient
    ):
        await asyncio.sleep(5)  # start-up
        cpu0, t0 = _cpu(), time.monotonic()
        await asyncio.sleep(QUIET_SECONDS)
        idle = (_cpu() - cpu0) / (time.monotonic() - t0) * 100
    share = cpu / elapsed * 100
    print(
        f"gateway CPU without the reconciler {idle:.2f} % of one core: the reconciler adds "
        f"{share - idle:.2f} % {_load()}",
        flush=True,
    )
    print(
        f"RESULT n={N} interval_s={INTERVAL:.0f} cpu_percent={share:.2f} "
        f"reconciler_cpu_percent={share - idle:.2f} "
        f"requests_per_min={requests / elapsed * 60:.1f} "
        f"p50_s={(statistics.median(delays) if delays else -1):.2f} "
        f"p99_s={(_p99(delays) if delays else -1):.2f} missing={missing} "
        f"load1={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    violations = ask("stop")
    assert not violations, violations[:3]
    emulator.join(10)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="netweave-bench-argocd-health-") as tmp:
        asyncio.run(main(Path(tmp)))
    sys.exit(0)

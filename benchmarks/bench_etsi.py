"""Benchmarks of the ETSI SOL003 face (issue 19), measured side by side on one server.

E1  With 10 000 VNF instances stored: ``GET /vnflcm/v2/vnf_instances`` with a ``filter`` and
    paging at concurrency 32, the requests rotating over every page of the filter's answer
    (markers taken from the ``Link`` headers): p99 latency (target <= 20 ms). Measured twice:
    a filter SQL can pre-filter (``(eq,vnfdId,…)``, pushed down to the column) and, for
    contrast, one on a nested attribute that only Python can evaluate (``metadata/group``),
    each matching 1 000 instances (10 pages of 100). One server process answers the 32
    connections in turn, so the p99 is about 32 times one page's own time: the figure moves
    with that time (SQL read, JSON columns, rendering) and with the machine's load.
E2  GET one VNF instance throughput as a ratio to the native ``GET /o2dms/v1/nfDeployments/{id}``
    on the same server, interleaved rounds (target >= 0.9). Both are answered from the store
    alone: the instance is NOT_INSTANTIATED and the native deployment has not reached a backend
    yet (no backend call on either side), so the ratio is the face's own cost.

The server is the real ``netweave serve`` (uvicorn, one process, SQLite, the Helm adapter), seeded
through the store before it starts; ``wrk`` (Debian package ``wrk``) generates the load over
loopback. Every run is bounded by a fixed duration. The machine's load average is printed with
each figure: on a shared machine, a high one distorts both sides. One process only: ``netweave
serve`` has no worker option, and a SQLite store serves one process (several replicas share a
PostgreSQL store, docs/replicas.md), so there is no workers=cores figure to print.

floor  ``GET /vnflcm/v2/api_versions`` at the same concurrency, right before E1: routing, auth
    and a small body, no store read. Its p99 is what the machine's load alone does to the tail
    (a list page cannot answer faster), its CPU per request what the HTTP stack costs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from bench_api import CONCURRENCY, TOKEN, free_port, start_server, wait_ready, wrk
from netweave.models import DeploymentStatus, PackageState
from netweave.store import DeploymentRecord, PackageRecord
from netweave.store.sql import create_store
from netweave.store.vnf import VnfInstanceRecord

INSTANCES = 10_000
PACKAGES = 10
DEPLOYMENTS = 1_000
ROUNDS = 3
SECONDS = 5
VERSION = "2.3.0"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs"


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, from /proc): unlike latency, what one
    request costs the server does not grow with the neighbours' load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def seed(data_dir: Path) -> tuple[str, str, str]:
    """Packages, VNF instances and native deployments; returns (a vnfdId, an instance id, a
    deployment id)."""
    store = create_store(f"sqlite:///{data_dir / 'netweave.db'}")
    await store.migrate()
    now = datetime.now(UTC)
    packages = [f"vnf-{p}-1.0.0" for p in range(PACKAGES)]
    instance_ids: list[str] = []
    deployment_ids: list[str] = []
    async with store.transaction():
        for p, package_id in enumerate(packages):
            await store.add_package(
                PackageRecord(
                    package_id=package_id, name=f"vnf-{p}", version="1.0.0",
                    artifact_name=f"{package_id}.tgz", package_type="helm",
                    state=PackageState.AVAILABLE, adapter="helm-local",
                    backend_ref=f"vnf-{p}:1.0.0", created_at=now, updated_at=now,
                    checksum="sha256:" + "0" * 64, provider="bench",
                    extensions={"chartVersion": "1.0.0"},
                )
            )  # fmt: skip
        for i in range(INSTANCES):
            instance_id = str(uuid.uuid4())
            instance_ids.append(instance_id)
            await store.add_vnf_instance(
                VnfInstanceRecord(
                    vnf_instance_id=instance_id,
                    vnfd_id=packages[i % PACKAGES],
                    created_at=now + timedelta(microseconds=i),
                    name=f"vnf-{i:05d}",
                    description="bench instance",
                    instance_metadata={"group": i % PACKAGES, "n": i},
                )
            )
        for i in range(DEPLOYMENTS):
            deployment_id = str(uuid.uuid4())
            deployment_ids.append(deployment_id)
            await store.add_deployment(
                DeploymentRecord(
                    deployment_id=deployment_id, name=f"native-{i:05d}", namespace="default",
                    package_id=packages[i % PACKAGES], package_version="1.0.0",
                    adapter="helm-local", status=DeploymentStatus.DEPLOYING,
                    created_at=now, updated_at=now, values={"replicaCount": 1},
                )
            )  # fmt: skip
    await store.close()
    return packages[3], instance_ids[INSTANCES // 2], deployment_ids[DEPLOYMENTS // 2]


def pages(base: str, expression: str) -> list[str]:
    """Every page's path and query of the filter's answer, following the Link headers."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Version": VERSION}
    url = f"{base}/vnflcm/v2/vnf_instances?filter={expression}"
    found: list[str] = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(1000):  # bounded
            response = client.get(url)
            response.raise_for_status()
            found.append(url.removeprefix(base))
            link = response.headers.get("link")
            if not link:
                break
            match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            assert match is not None, link
            url = match.group(1)
    return found


def rotating(paths: list[str], directory: Path) -> Path:
    """A wrk script sending the requests round-robin over ``paths``."""
    script = directory / f"rotate-{len(paths)}-{uuid.uuid4().hex[:6]}.lua"
    quoted = ",\n".join(f'  "{p}"' for p in paths)
    script.write_text(
        f"local paths = {{\n{quoted}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\nend\n'
    )
    return script


def wrk_rotating(base: str, script: Path) -> tuple[float, dict[str, float]]:
    # A generous timeout: a slow page must count in the latency, not vanish as a timeout.
    extra = ["-s", str(script), "-H", f"Version: {VERSION}", "--timeout", "30s"]
    return wrk(base, CONCURRENCY, SECONDS, extra=extra)


def measure_floor(base: str, pid: int) -> None:
    """What the HTTP stack alone costs on this server and machine: ``GET /vnflcm/v2/api_versions``
    (routing, auth, a small body, no store read) at the same concurrency: no list page can
    answer faster than this."""
    url = f"{base}/vnflcm/v2/api_versions"
    version = ["-H", f"Version: {VERSION}"]
    wrk(url, CONCURRENCY, 2, extra=version)  # warm-up
    cpu = cpu_seconds(pid)
    rps, latency = wrk(url, CONCURRENCY, SECONDS, extra=version)
    cpu = cpu_seconds(pid) - cpu
    if not rps or "99" not in latency:
        print(f"floor: no answer within the run [{load()}]")
        return
    per_request = cpu / (rps * SECONDS) * 1000
    print(
        f"floor GET /vnflcm/v2/api_versions c={CONCURRENCY}: p99 = {latency['99']:.1f} ms, "
        f"median = {latency['50']:.1f} ms, {rps:.0f} req/s [{load()}]; server CPU "
        f"{per_request:.2f} ms per request"
    )


def measure_lists(base: str, vnfd_id: str, directory: Path, pid: int) -> None:
    for label, expression in (
        ("pushed down (eq,vnfdId)", f"(eq,vnfdId,{vnfd_id})"),
        ("Python only (eq,metadata/group)", "(eq,metadata/group,3)"),
    ):
        paths = pages(base, expression)
        script = rotating(paths, directory)
        wrk_rotating(base, script)  # warm-up
        cpu = cpu_seconds(pid)
        rps, latency = wrk_rotating(base, script)
        cpu = cpu_seconds(pid) - cpu
        if not rps or "99" not in latency:
            print(f"E1 filter {label}: no answer within the run (MISS) [{load()}]")
            continue
        # One server process answers the 32 connections in turn: unloaded, a request waits for
        # the 31 before it, so p99 is about 32 times one page's CPU cost.
        per_page = cpu / (rps * SECONDS) * 1000
        print(
            f"E1 list {len(paths)} rotating pages of {INSTANCES} instances, filter {label}, "
            f"c={CONCURRENCY}: p99 = {latency['99']:.1f} ms, median = {latency['50']:.1f} ms, "
            f"{rps:.0f} req/s (target p99 <= 20 ms) {'PASS' if latency['99'] <= 20 else 'MISS'} "
            f"[{load()}]; server CPU {per_page:.2f} ms per page (x{CONCURRENCY} = "
            f"{per_page * CONCURRENCY:.0f} ms: the p99 one process could reach on an idle machine)"
        )


def measure_get(base: str, instance_id: str, deployment_id: str, pid: int) -> None:
    face = f"{base}/vnflcm/v2/vnf_instances/{instance_id}"
    native = f"{base}/o2dms/v1/nfDeployments/{deployment_id}"
    version = ["-H", f"Version: {VERSION}"]
    wrk(face, CONCURRENCY, 2, extra=version)  # warm-up
    wrk(native, CONCURRENCY, 2)
    ratios = []
    cpu_ratios = []
    for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
        cpu = cpu_seconds(pid)
        face_rps, _ = wrk(face, CONCURRENCY, SECONDS, extra=version)
        face_cpu = (cpu_seconds(pid) - cpu) / max(face_rps * SECONDS, 1) * 1000
        cpu = cpu_seconds(pid)
        native_rps, _ = wrk(native, CONCURRENCY, SECONDS)
        native_cpu = (cpu_seconds(pid) - cpu) / max(native_rps * SECONDS, 1) * 1000
        if face_rps and native_rps:
            ratios.append(face_rps / native_rps)
            cpu_ratios.append(native_cpu / face_cpu)
        print(
            f"  E2 round: vnflcm GET one {face_rps:8.0f} req/s ({face_cpu:.2f} ms CPU each)   "
            f"native GET one {native_rps:8.0f} req/s ({native_cpu:.2f} ms CPU each)   [{load()}]"
        )
    if not ratios:
        print(f"E2 GET one VNF instance: no round answered on both sides (MISS) [{load()}]")
        return
    ratio = statistics.median(ratios)
    print(
        f"E2 GET one VNF instance / native GET one deployment (store only): {ratio:.2f} "
        f"(target >= 0.9) {'PASS' if ratio >= 0.9 else 'MISS'} [{load()}]; by server CPU per "
        f"request (native / vnflcm): {statistics.median(cpu_ratios):.2f}"
    )


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_etsi needs wrk (Debian package 'wrk') as its load generator")
    with tempfile.TemporaryDirectory(prefix="netweave-bench-etsi-") as tmp:
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        vnfd_id, instance_id, deployment_id = asyncio.run(seed(data_dir))
        print(
            f"seeded {INSTANCES} VNF instances, {DEPLOYMENTS} deployments in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        port = free_port()
        proc = start_server(data_dir, port, hooks=False)
        try:
            wait_ready(port, proc)
            base = f"http://127.0.0.1:{port}"
            # GET one first: a slow list run leaves requests in flight that the next
            # measurement would pay for.
            measure_get(base, instance_id, deployment_id, proc.pid)
            measure_floor(base, proc.pid)
            measure_lists(base, vnfd_id, data_dir, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # still draining under load: do not leave it
                proc.kill()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()

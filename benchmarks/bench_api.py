"""API benchmarks of netweave-core (issue 2), measured side by side and printed as ratios.

P1  GET one package with 10 000 stored: throughput relative to a bare Litestar handler returning
    the same model on the same server in the same run (target >= 0.6).
P2  List a page of 100 of 10 000 with a filter: p99 latency at concurrency 32 (target <= 20 ms).
P5  ``netweave serve`` cold start (fresh data directory, migrations included) to /readyz 200;
    netweave's packages byte-compiled first, as a wheel install leaves them
    (target <= 1.5 s).
LOG The access log's cost: P1's GET one package on a server with the default logging (INFO,
    one access line per request, written to a file) against the same server at WARNING (no
    access line), interleaved rounds; throughput ratio (target >= 0.8: the log must not
    halve throughput). P1 and P2 themselves run at WARNING, so they measure the API alone.

The server is the real ``netweave serve`` (uvicorn, one process, embedded default: SQLite and
the Helm adapter). The load comes from ``wrk`` (Debian package ``wrk``) over loopback: a C load
generator, so the client does not become the bottleneck it is in Python. Every run is bounded
by a fixed duration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from netweave.models import PackageState
from netweave.store import PackageRecord
from netweave.store.sql import create_store

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token-" + "b" * 32
PACKAGES = 10_000
CONCURRENCY = 32
ROUNDS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(data_dir: Path) -> None:
    store = create_store(f"sqlite:///{data_dir / 'netweave.db'}")
    await store.migrate()
    now = datetime.now(UTC)
    async with store.transaction():
        for i in range(PACKAGES):
            name = f"bench-{i:05d}"
            await store.add_package(
                PackageRecord(
                    package_id=f"{name}-1.0.0",
                    name=name,
                    version="1.0.0",
                    artifact_name=f"{name}-1.0.0.tgz",
                    package_type="helm" if i % 2 else "helm-library",
                    state=PackageState.AVAILABLE,
                    adapter="helm-local",
                    backend_ref=f"{name}:1.0.0",
                    created_at=now,
                    updated_at=now,
                    checksum="sha256:" + "0" * 64,
                    extensions={"chartVersion": "1.0.0", "appVersion": "1.0"},
                )
            )
    await store.close()


def start_server(
    data_dir: Path, port: int, hooks: bool, *, default_logging: bool = False
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NETWEAVE_API_TOKEN=TOKEN, NETWEAVE_LOG_LEVEL="WARNING")
    stderr: Any = subprocess.PIPE
    if default_logging:
        # The default level and format, written to a file as a service manager would.
        del env["NETWEAVE_LOG_LEVEL"]
        stderr = (data_dir / f"gateway-{port}.log").open("ab")
    args = [
        sys.executable,
        "-m",
        "netweave",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    if hooks:
        config = data_dir / "bench.yaml"
        config.write_text(
            "plugins:\n  hooks: [bare_route]\n  dms:\n    - name: helm-local\n      type: helm\n"
            "      default: true\n      config: {storage: {kind: local}}\n"
        )
        args += ["--config", str(config)]
        # Prepended, not replacing: a PYTHONPATH naming the sources under test must still hold.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 30.0) -> float:
    started = time.perf_counter()
    deadline = started + limit
    with httpx.Client() as client:
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                if client.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    raise RuntimeError("server not ready in time")


WRK_SECONDS = 5
_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, connections: int, seconds: int = WRK_SECONDS, extra: list[str] | None = None
) -> tuple[float, dict[str, float]]:
    """(requests per second, {"50": ms, "99": ms}) for ``url`` with ``connections`` open;
    ``extra``: more wrk arguments (headers, a script)."""
    result = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {TOKEN}", *(extra or []), url],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    )  # fmt: skip
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"{url}: non-2xx answers\n{result.stdout}")
    rps = float(_RPS.search(result.stdout).group(1))  # type: ignore[union-attr]
    latency = {p: float(v) * _UNIT[u] for p, v, u in _LATENCY.findall(result.stdout)}
    return rps, latency


def measure(port: int, parts: set[str]) -> None:
    base = f"http://127.0.0.1:{port}"
    one = f"{base}/o2dms/v1/nfDeploymentDescriptors/bench-05000-1.0.0"
    bare = f"{base}/bench/bare"
    page = f"{base}/o2dms/v1/nfDeploymentDescriptors?packageType=helm&limit=100&offset=2000"
    if "P1" in parts:
        measure_p1(one, bare)
    if "P2" in parts:
        # No warm-up of its own: measured as it always was, first listing of the run included.
        rps, latency = wrk(page, CONCURRENCY)
        print(
            f"P2 list 100 of {PACKAGES} (filter packageType) at concurrency {CONCURRENCY}: "
            f"p99 = {latency['99']:.1f} ms, median = {latency['50']:.1f} ms, {rps:.0f} req/s "
            f"(target p99 <= 20 ms) {'PASS' if latency['99'] <= 20 else 'MISS'}"
        )


def measure_p1(one: str, bare: str) -> None:
    wrk(one, CONCURRENCY, 2)  # warm-up
    wrk(bare, CONCURRENCY, 2)
    ratios = []
    for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
        gateway_rps, _ = wrk(one, CONCURRENCY)
        bare_rps, _ = wrk(bare, CONCURRENCY)
        ratios.append(gateway_rps / bare_rps)
        print(f"  P1 round: gateway {gateway_rps:8.0f} req/s   bare {bare_rps:8.0f} req/s")
    ratio = statistics.median(ratios)
    print(
        f"P1 GET one package of {PACKAGES}: throughput ratio to bare handler = {ratio:.2f} "
        f"(target >= 0.6) {'PASS' if ratio >= 0.6 else 'MISS'}"
    )


def access_log_cost(data_dir: Path) -> None:
    """LOG: GET one package with the default logging vs at WARNING, interleaved."""
    one = "/o2dms/v1/nfDeploymentDescriptors/bench-05000-1.0.0"
    servers = {}
    for name, default_logging in (("default", True), ("warning", False)):
        # Each server on its own copy of the seeded store: two processes, one SQLite file each.
        own = data_dir / f"log-{name}"
        own.mkdir()
        shutil.copy(data_dir / "netweave.db", own / "netweave.db")
        port = free_port()
        proc = start_server(own, port, hooks=False, default_logging=default_logging)
        servers[name] = (port, proc)
    try:
        for port, proc in servers.values():
            wait_ready(port, proc)
            wrk(f"http://127.0.0.1:{port}{one}", CONCURRENCY, 2)  # warm-up
        ratios = []
        for _ in range(5):  # two servers side by side: more rounds against the neighbours' noise
            logged, _ = wrk(f"http://127.0.0.1:{servers['default'][0]}{one}", CONCURRENCY)
            quiet, _ = wrk(f"http://127.0.0.1:{servers['warning'][0]}{one}", CONCURRENCY)
            ratios.append(logged / quiet)
            print(f"  LOG round: default logging {logged:8.0f} req/s   WARNING {quiet:8.0f} req/s")
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    ratio = statistics.median(ratios)
    print(
        f"LOG GET one package with the default access log / without: {ratio:.2f} "
        f"(target >= 0.8) {'PASS' if ratio >= 0.8 else 'MISS'} [load {os.getloadavg()[0]:.2f}]"
    )


def compile_sources() -> None:
    """Byte-compile netweave's own packages, as pip does when it installs a wheel: an editable
    checkout (or ``PYTHONDONTWRITEBYTECODE``) would otherwise make every start compile them
    from source, which no installed gateway does."""
    import compileall
    import importlib.util

    for name in ("netweave", "netweave_helm"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                compileall.compile_dir(location, quiet=1)


def cold_starts() -> None:
    compile_sources()
    times = []
    for _ in range(3):
        with tempfile.TemporaryDirectory(prefix="netweave-bench-cold-") as tmp:
            port = free_port()
            t0 = time.perf_counter()
            proc = start_server(Path(tmp), port, hooks=False)
            try:
                wait_ready(port, proc)
                times.append(time.perf_counter() - t0)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    median = statistics.median(times)
    print(
        f"P5 netweave serve cold start to /readyz: median {median:.2f} s of "
        f"{', '.join(f'{t:.2f}' for t in times)} (target <= 1.5 s) "
        f"{'PASS' if median <= 1.5 else 'MISS'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = ("P1", "P2", "P5", "LOG")
    parser.add_argument("parts", nargs="*", metavar="|".join(every), help="default: all")
    parts = set(parser.parse_args().parts or every)
    if parts - set(every):
        parser.error(f"unknown part(s): {', '.join(sorted(parts - set(every)))}")
    if parts & {"P1", "P2", "LOG"}:
        if shutil.which("wrk") is None:
            sys.exit("bench_api needs wrk (Debian package 'wrk') as its load generator")
        serve_and_measure(parts)
    if "P5" in parts:
        cold_starts()


def serve_and_measure(parts: set[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="netweave-bench-") as tmp:
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        asyncio.run(seed(data_dir))
        print(f"seeded {PACKAGES} packages in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        proc = start_server(data_dir, port, hooks=True)
        try:
            wait_ready(port, proc)
            measure(port, parts)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        if "LOG" in parts:
            access_log_cost(data_dir)


if __name__ == "__main__":
    main()

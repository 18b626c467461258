"""P3: upload a ~100 MB chart through HTTP and through the adapter vs the Helm SDK loading
and linting it.

``python bench_upload.py`` (what ``nox -s bench`` runs; ``HOME`` must be a temporary directory
at start) makes the chart, then runs each side ``ROUNDS`` times, each in a fresh process, and
prints the medians: the time ratios through HTTP/SDK (the target, <= 1.3: a multipart POST to a
real ``netweave serve`` in its own process, as an SMO uploads) and adapter/SDK (the adapter
called in-process: what the HTTP figure adds to is visible), the CPU time per upload of each
side (through HTTP: the gateway with its chart-check child, plus the client) and their ratio —
on a saturated machine the time ratio tends to it, since the gateway's concurrent parts
(receiving, inspecting as the bytes arrive, the child's SDK load) then find no idle core — and
the gateway process's peak RSS growth (target <= 50 MB) next to the SDK's own. The sides alone::

    python bench_upload.py make DIR | sdk DIR | adapter DIR | http DIR

Peak RSS is sampled from /proc/self/statm every 5 ms. The adapter runs Helm's dependency list
and lint in a short-lived child process (``netweave_helm.chartcheck``), so the chart never
enters the gateway's memory: the child's peak RSS (``getrusage(RUSAGE_CHILDREN)``, absolute,
including its Python and Go runtimes) is printed separately. That child is started when the
adapter starts (and again after each upload), so its interpreter and SDK load before the upload
is timed; its CPU time, the load included, is counted in the upload's.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class Peak:
    def __init__(self) -> None:
        self.base = rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def make(directory: Path) -> Path:
    """20 incompressible files of 4.9 MB (Helm's per-file limit is 5 MiB): ~98 MB."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "big-1.0.0.tgz"
    files = {
        "Chart.yaml": b"apiVersion: v2\nname: big\nversion: 1.0.0\ndescription: big\n"
        b"icon: https://example.invalid/icon.png\n",
        "values.yaml": b"replicaCount: 1\n",
        "templates/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        b"  name: {{ .Release.Name }}\n",
    }
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"big/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for i in range(20):
            data = os.urandom(4_900_000)
            info = tarfile.TarInfo(f"big/files/blob{i}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def sdk(directory: Path) -> None:
    import helm_python

    archive = directory / "big-1.0.0.tgz"
    with Peak() as peak:
        cpu = time.process_time()
        start = time.perf_counter()
        chart = helm_python.Chart.load(str(archive))
        chart.close()
        helm_python.lint(str(archive))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    print(f"RESULT {elapsed:.4f} {(peak.peak - peak.base) / 1e6:.1f} 0 {cpu:.4f}")


def adapter(directory: Path) -> None:
    from netweave.adapters import PackageUpload
    from netweave_helm.adapter import HelmAdapter
    from netweave_helm.config import HelmConfig

    archive = directory / "big-1.0.0.tgz"
    repo = directory / f"repo-{os.getpid()}"
    config = {"storage": {"kind": "local", "repositoryDir": str(repo)}}
    instance = HelmAdapter("bench", HelmConfig.model_validate(config))

    # The gateway computes the checksum while it streams the body to disk.
    checksum = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()

    cpu: list[float] = []

    async def run() -> float:
        await instance.start()
        try:
            cpu.append(_own_and_children_cpu())
            start = time.perf_counter()
            await instance.upload_package(
                PackageUpload(name="big", version="1.0.0", archive=archive, checksum=checksum)
            )
            elapsed = time.perf_counter() - start
            cpu.append(_own_and_children_cpu())
            return elapsed
        finally:
            await instance.stop()

    with Peak() as peak:
        elapsed = asyncio.run(run())
    # ru_maxrss is in KiB on Linux: the largest of this process's waited-for children, here
    # the one chart-check child.
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    used = cpu[1] - cpu[0]
    print(f"RESULT {elapsed:.4f} {(peak.peak - peak.base) / 1e6:.1f} {child / 1e6:.1f} {used:.4f}")


def _own_and_children_cpu() -> float:
    """CPU seconds of this process and its waited-for children (the chart-check child, once
    it has been reaped: the one that checked the chart is, by the time the upload answers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def http(directory: Path) -> None:
    """The upload as an SMO makes it: multipart through HTTP to a real ``netweave serve`` (its
    own process, embedded defaults, local chart repository, logging at INFO), streamed from
    disk by this process; timed from the request until the 201. The gateway's RSS growth is
    its peak during the upload (``VmHWM``) over its RSS when ready."""
    import httpx
    from bench_creates import netweave_serve

    archive = directory / "big-1.0.0.tgz"
    token = "bench-token-" + "u" * 32  # a throwaway token for a loopback benchmark
    work = directory / f"gateway-{os.getpid()}"
    with netweave_serve(work, None, token) as (base, pid):
        before = _status_kb(pid, "VmRSS")
        with (
            httpx.Client(base_url=base, timeout=600) as client,
            archive.open("rb") as handle,
        ):
            gateway_cpu = _gateway_cpu(pid)
            client_cpu = time.process_time()
            start = time.perf_counter()
            response = client.post(
                "/o2dms/v1/nfDeploymentDescriptors",
                headers={"Authorization": f"Bearer {token}"},
                data={"name": "big", "artifactVersion": "1.0.0"},
                files={"chart": (archive.name, handle, "application/gzip")},
            )
            elapsed = time.perf_counter() - start
            client_cpu = time.process_time() - client_cpu
            gateway_cpu = _gateway_cpu(pid) - gateway_cpu
        if response.status_code != 201:
            raise RuntimeError(f"upload answered {response.status_code}: {response.text}")
        peak = _status_kb(pid, "VmHWM")
    shutil.rmtree(work, ignore_errors=True)
    used = gateway_cpu + client_cpu
    print(f"RESULT {elapsed:.4f} {(peak - before) / 1e3:.1f} 0 {used:.4f} {gateway_cpu:.4f}")


def _gateway_cpu(pid: int) -> float:
    """CPU seconds of the gateway process and its reaped children (the chart-check child:
    its whole life, the SDK's load included even when it was started before the upload)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), 11-14 after the command.
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


#: Odd, and more than 3: on a shared machine single rounds vary by a factor of two.
ROUNDS = 7


#: One side's figures, as its RESULT line gives them: seconds, peak RSS growth (MB), the
#: chart-check child's peak RSS (MB; 0 when not measured), CPU seconds, and for the HTTP side
#: the gateway's share of them.
Run = list[float]


def _side(side: str, directory: Path) -> Run:
    out = subprocess.run(
        [sys.executable, __file__, side, str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return [float(x) for x in line.split()[1:]]


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def _median(runs: list[Run], index: int) -> float:
    return statistics.median(run[index] for run in runs)


def _paired(runs: list[Run], base: list[Run], index: int) -> float:
    """The median of the per-round ratios (rounds run the sides back to back, so each pair
    saw about the same load from elsewhere)."""
    return statistics.median(a[index] / b[index] for a, b in zip(runs, base, strict=True))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="netweave-p3-") as tmp:
        directory = Path(tmp)
        archive = make(directory)
        size = archive.stat().st_size / 1e6
        sdk_runs: list[Run] = []
        adapter_runs: list[Run] = []
        http_runs: list[Run] = []
        for i in range(ROUNDS):
            sdk_runs.append(_side("sdk", directory))
            adapter_runs.append(_side("adapter", directory))
            http_runs.append(_side("http", directory))
            sdk_s, adapter_s, http_s = sdk_runs[-1][0], adapter_runs[-1][0], http_runs[-1][0]
            print(
                f"  round {i + 1}: SDK {sdk_s:.3f} s, adapter {adapter_s:.3f} s, "
                f"through HTTP {http_s:.3f} s (ratio {http_s / sdk_s:.2f}) [{load()}]",
                flush=True,
            )
    print(f"P3 upload of a {size:.0f} MB chart (median of {ROUNDS}, fresh process each):")
    print(
        f"  Helm SDK load+lint: {_median(sdk_runs, 0):.3f} s, CPU {_median(sdk_runs, 3):.3f} s, "
        f"peak RSS growth {_median(sdk_runs, 1):.0f} MB"
    )
    print(
        f"  adapter upload:     {_median(adapter_runs, 0):.3f} s, CPU "
        f"{_median(adapter_runs, 3):.3f} s (with the chart-check child), gateway peak RSS "
        f"growth {_median(adapter_runs, 1):.0f} MB"
    )
    print(
        f"  chart-check child (Helm dependency list + lint, separate process, exits after the "
        f"chart): peak RSS {_median(adapter_runs, 2):.0f} MB"
    )
    http_rss = _median(http_runs, 1)
    print(
        f"  through HTTP to netweave serve: {_median(http_runs, 0):.3f} s (multipart streamed "
        f"from disk until the 201), CPU {_median(http_runs, 3):.3f} s (the gateway with its "
        f"chart-check child {_median(http_runs, 4):.3f} s, the rest the client's), gateway "
        f"process peak RSS growth {http_rss:.0f} MB"
    )
    for label, runs in (("adapter (in-process)", adapter_runs), ("through HTTP", http_runs)):
        ratio = _paired(runs, sdk_runs, 0)
        verdict = "met" if ratio <= 1.3 else "NOT met"
        print(
            f"  P3 {label}/SDK: median of the per-round ratios {ratio:.2f} "
            f"(target <= 1.3: {verdict}) [{load()}]"
        )
    # What the time ratio tends to when the machine has no idle core to run the gateway's
    # concurrent parts (receiving, inspecting, the child's SDK load) beside each other.
    print(
        f"  CPU per upload through HTTP/SDK: median of the per-round ratios "
        f"{_paired(http_runs, sdk_runs, 3):.2f} (not a target) [{load()}]"
    )
    growth = max(http_rss, _median(adapter_runs, 1))
    verdict = "met" if growth <= 50 else "NOT met"
    print(
        f"  gateway peak RSS growth: through HTTP {http_rss:.0f} MB, adapter in-process "
        f"{_median(adapter_runs, 1):.0f} MB (target <= 50 MB: {verdict})"
    )


if __name__ == "__main__":
    if len(sys.argv) == 1:
        main()
    else:
        command, where = sys.argv[1], Path(sys.argv[2])
        {"make": make, "sdk": sdk, "adapter": adapter, "http": http}[command](where)

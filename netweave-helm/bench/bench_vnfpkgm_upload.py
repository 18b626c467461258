"""Issue 20: onboard a ~100 MB SOL004 CSAR through ``PUT /vnfpkgm/v2/vnf_packages/{id}/
package_content`` vs the bare chart it wraps through ``POST /o2dms/v1/nfDeploymentDescriptors``.

``python bench_vnfpkgm_upload.py`` (what ``nox -s bench`` runs; ``HOME`` must be a temporary
directory) makes the chart (bench_upload's ~98 MB of incompressible files) and a CSAR holding
it (SOL001 VNFD, SHA-256 manifest), then, each round in a fresh ``netweave serve`` process per
side, times the bare upload (multipart, until the 201) and the CSAR onboarding (create, then the
zip streamed from disk as the PUT body, until the 202: the CSAR is inspected, every digest
checked, the chart extracted and stored by the adapter while the request waits), and reads each
gateway's peak RSS growth (``VmHWM`` over its RSS when ready) and the CPU time the gateway
spent on the request (its own and its reaped children's, the chart-check child included, from
``/proc/<pid>/stat``: steadier than wall time on a loaded machine). Targets: CSAR/bare time
ratio ≤ 1.2, CSAR RSS growth ≤ 50 MB.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5  # one round's ratio moves by ±0.2 on a loaded machine: the median of 5
TOKEN = "bench-token-" + "v" * 32  # a throwaway token for a loopback benchmark


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` (children count once reaped)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def make(directory: Path) -> None:
    from bench_upload import make as make_chart
    from netweave.testing.vnfpkgm import build_csar, vnfd_document

    chart = make_chart(directory)
    build_csar(directory / "big.csar", vnfd=vnfd_document("big-vnfd"), chart=chart)


def side(kind: str, directory: Path) -> None:
    import httpx
    from bench_creates import netweave_serve

    work = directory / f"gateway-{kind}-{os.getpid()}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with netweave_serve(work, None, TOKEN) as (base, pid):
        before = _status_kb(pid, "VmRSS")
        cpu = _cpu_seconds(pid)
        with httpx.Client(base_url=base, timeout=900, headers=auth) as client:
            if kind == "bare":
                archive = directory / "big-1.0.0.tgz"
                with archive.open("rb") as handle:
                    start = time.perf_counter()
                    response = client.post(
                        "/o2dms/v1/nfDeploymentDescriptors",
                        data={"name": "big", "artifactVersion": "1.0.0"},
                        files={"chart": (archive.name, handle, "application/gzip")},
                    )
                    elapsed = time.perf_counter() - start
                expected = 201
            else:
                headers = {"Version": "2.4.0"}
                start = time.perf_counter()
                created = client.post("/vnfpkgm/v2/vnf_packages", json={}, headers=headers)
                package = created.json()["id"]
                with (directory / "big.csar").open("rb") as handle:
                    response = client.put(
                        f"/vnfpkgm/v2/vnf_packages/{package}/package_content",
                        content=handle,
                        headers={**headers, "Content-Type": "application/zip"},
                    )
                elapsed = time.perf_counter() - start
                expected = 202
        if response.status_code != expected:
            raise RuntimeError(f"{kind} answered {response.status_code}: {response.text}")
        cpu = _cpu_seconds(pid) - cpu
        peak = _status_kb(pid, "VmHWM")
    shutil.rmtree(work, ignore_errors=True)
    print(f"RESULT {elapsed:.4f} {(peak - before) / 1e3:.1f} {cpu:.2f}")


def _run(kind: str, directory: Path) -> tuple[float, float, float]:
    out = subprocess.run(
        [sys.executable, __file__, kind, str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    seconds, growth, cpu = line.split()[1:4]
    return float(seconds), float(growth), float(cpu)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="netweave-vnfpkgm-") as tmp:
        directory = Path(tmp)
        make(directory)
        csar_mb = (directory / "big.csar").stat().st_size / 1e6
        bare_runs: list[tuple[float, float, float]] = []
        csar_runs: list[tuple[float, float, float]] = []
        for i in range(ROUNDS):
            bare_runs.append(_run("bare", directory))
            csar_runs.append(_run("csar", directory))
            print(
                f"  round {i + 1}: bare chart {bare_runs[-1][0]:.3f} s (gateway CPU "
                f"{bare_runs[-1][2]:.2f} s), CSAR {csar_runs[-1][0]:.3f} s (gateway CPU "
                f"{csar_runs[-1][2]:.2f} s) [load {os.getloadavg()[0]:.2f}]",
                flush=True,
            )
    ratio = statistics.median(c[0] / b[0] for c, b in zip(csar_runs, bare_runs, strict=True))
    cpu_ratio = statistics.median(
        c[2] / b[2] for c, b in zip(csar_runs, bare_runs, strict=True) if b[2] > 0
    )
    csar_rss = statistics.median(r for _, r, _ in csar_runs)
    bare_rss = statistics.median(r for _, r, _ in bare_runs)
    print(f"vnfpkgm onboarding of a {csar_mb:.0f} MB CSAR (median of {ROUNDS}, fresh gateways):")
    print(
        f"  bare chart upload {statistics.median(t for t, _, _ in bare_runs):.3f} s "
        f"(gateway RSS growth {bare_rss:.0f} MB); CSAR onboarding "
        f"{statistics.median(t for t, _, _ in csar_runs):.3f} s "
        f"(gateway RSS growth {csar_rss:.0f} MB)"
    )
    print(
        f"  gateway CPU per upload: bare {statistics.median(c for _, _, c in bare_runs):.2f} s, "
        f"CSAR {statistics.median(c for _, _, c in csar_runs):.2f} s (median of the per-round "
        f"ratios {cpu_ratio:.2f}) [load {os.getloadavg()[0]:.2f}]"
    )
    print(
        f"  CSAR/bare time: median of the per-round ratios {ratio:.2f} (target <= 1.2: "
        f"{'met' if ratio <= 1.2 else 'NOT met'}); CSAR gateway RSS growth {csar_rss:.0f} MB "
        f"(target <= 50 MB: {'met' if csar_rss <= 50 else 'NOT met'})"
    )


if __name__ == "__main__":
    if len(sys.argv) == 1:
        main()
    else:
        {"make": make, "bare": side, "csar": side}[sys.argv[1]](
            *((sys.argv[1], Path(sys.argv[2])) if sys.argv[1] != "make" else (Path(sys.argv[2]),))
        )

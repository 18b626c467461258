"""Catalogue scale: the gateway's cost per call as the local chart repository grows.

``python bench_catalogue_scale.py [N ...]`` (what ``nox -s bench`` runs; default sizes
1 000 and 10 000, plus 100 000 when ``NETWEAVE_BENCH_SCALE_MAX=100000``). For each size N:

* a real repository: N small real chart archives (one minimal chart, name varied, written as
  tar.gz directly) in the local repository directory, and N package records in the gateway's
  store (seeded in one transaction, as ``benchmarks/bench_api.py`` does);
* a real ``netweave serve`` process (uvicorn, SQLite, the Helm adapter) with the **default
  logging configuration** (INFO, access log on, to a file);
* its first start indexes the N archives (no saved index: each archive is inspected) — printed,
  it is the one-off cost of adopting a repository; then the gateway is restarted and measured:

  - first list after start (the saved index is read; nothing is inspected);
  - upload (multipart through HTTP, real validation), registration by ``packageUri`` of an
    archive dropped into the repository, delete: medians of ``OPS`` each;
  - the first walk through every page by ``nextpageOpaqueMarker`` (one client): the pages
    read cold from the database file (each package's view is stored in its row, written with
    it; the seeded rows too);
  - GET one package with rotating ids, and a list page of 100 with rotating offsets, at
    concurrency 32 (``wrk`` with a Lua script stepping through the keys with a stride coprime
    to N, so consecutive requests never repeat a key). The gateway keeps answers for 1 s; each
    figure prints how often a key recurs, and says "cache hits likely" when that is under 2 s
    (at 1 000 it is: those two figures then include the response cache);
  - after the list by marker, the server CPU one page cost (from /proc: what the neighbours'
    load inflates less than latency);
  - the bare Litestar handler (``benchmarks/bare_route.py``) on the same server, for the GET
    ratio: the two alternate for ``GET_ROUNDS`` rounds and the ratio is the median of the
    rounds' (a neighbour's burst then hits both sides); the server's RSS after all of it.

The load average (1 min) is printed beside each figure: on a shared machine it says how much
of a figure is the bench and how much the neighbours. Ratios against N = 1 000 close the run.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
TOKEN = "scale-token-" + "s" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
CONCURRENCY = 32
WRK_SECONDS = 5
OPS = 15
GET_ROUNDS = 3
STRIDE = 7919  # prime: coprime with every N used here, so the Lua walk visits every key

CHART = b"apiVersion: v2\nname: {name}\nversion: {version}\ndescription: scale bench chart\n"
VALUES = b"greeting: hello\n"
TEMPLATE = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def archive_bytes(name: str, version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        files = {
            "Chart.yaml": CHART.replace(b"{name}", name.encode()).replace(
                b"{version}", version.encode()
            ),
            "values.yaml": VALUES,
            "templates/cm.yaml": TEMPLATE,
        }
        for path, data in files.items():
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)


def chart_name(i: int) -> str:
    return f"s{i:06d}"


def fill_repository(repo: Path, count: int) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (repo / f"{chart_name(i)}-1.0.0.tgz").write_bytes(archive_bytes(chart_name(i), "1.0.0"))


async def seed_store(data_dir: Path, count: int) -> None:
    from netweave.models import PackageState
    from netweave.operations.convert import package_json_parts, package_view_key
    from netweave.store import PackageRecord
    from netweave.store.sql import create_store

    store = create_store(f"sqlite:///{data_dir / 'netweave.db'}")
    await store.migrate()
    # Rows written with their rendered views, as the gateway's own writes are (else the
    # server's first minutes would pay the background fill of N views).
    store.set_package_renderer(package_json_parts, key=package_view_key())
    now = datetime.now(UTC)
    async with store.transaction():
        for i in range(count):
            name = chart_name(i)
            await store.add_package(
                PackageRecord(
                    package_id=f"{name}-1.0.0",
                    name=name,
                    version="1.0.0",
                    artifact_name=name,
                    package_type="helm",
                    state=PackageState.AVAILABLE,
                    adapter="helm-local",
                    backend_ref=f"{name}:1.0.0",
                    created_at=now,
                    updated_at=now,
                    checksum="sha256:" + "0" * 64,
                    extensions={"chartVersion": "1.0.0", "apiVersion": "v2"},
                )
            )
    await store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """A ``netweave serve`` process with the default logging (its stderr to a file)."""

    def __init__(self, data_dir: Path, repo: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = data_dir / "scale.yaml"
        config.write_text(
            "plugins:\n  hooks: [bare_route]\n  dms:\n    - name: helm-local\n      type: helm\n"
            f"      default: true\n      config: {{storage: {{kind: local, repositoryDir: "
            f"'{repo}'}}}}\n"
        )
        env = dict(os.environ, NETWEAVE_API_TOKEN=TOKEN)
        env.pop("NETWEAVE_LOG_LEVEL", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS), env.get("PYTHONPATH")]))
        self.log = (data_dir / "gateway.log").open("ab")
        args = [sys.executable, "-m", "netweave", "serve", "--port", str(self.port)]
        args += ["--data-dir", str(data_dir), "--config", str(config)]
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the gateway exited; see {self.data_dir / 'gateway.log'}")
                try:
                    if client.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        raise RuntimeError("the gateway did not become ready")

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (user + system): what a request costs it does not
        grow with the neighbours' load, unlike its latency."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


def first_list(gateway: Gateway, limit: float) -> tuple[float, int]:
    """Seconds from the first request until a complete list answers (503s retried)."""
    started = time.perf_counter()
    deadline = time.monotonic() + limit
    with httpx.Client(base_url=gateway.base, headers=AUTH, timeout=60) as client:
        while time.monotonic() < deadline:
            response = client.get(PACKAGES, params={"limit": 100})
            if response.status_code == 200:
                return time.perf_counter() - started, int(response.json()["total"])
            if response.status_code != 503:
                raise RuntimeError(f"first list: {response.status_code} {response.text}")
            time.sleep(min(1.0, float(response.headers.get("Retry-After", "1"))))
    raise RuntimeError("the first list never completed")


_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

LUA = """
local n = tonumber(os.getenv("NW_KEYS"))
local template = os.getenv("NW_PATH")
local stride = tonumber(os.getenv("NW_STRIDE"))
local i = math.random(0, n - 1)
request = function()
  i = (i + stride) % n
  return wrk.format("GET", string.format(template, i))
end
"""


LUA_MARKERS = """
local paths = {}
for line in io.lines(os.getenv("NW_MARKERS")) do paths[#paths + 1] = line end
local n = #paths
local stride = tonumber(os.getenv("NW_STRIDE"))
local i = math.random(0, n - 1)
request = function()
  i = (i + stride) % n
  return wrk.format("GET", paths[i + 1])
end
"""


def page_paths(gateway: Gateway, markers: Path) -> int:
    """Every page's path (limit 100), found by following nextpageOpaqueMarker from the first;
    written one a line for the Lua script. Returns how many pages."""
    paths = [f"{PACKAGES}?limit=100"]
    with httpx.Client(base_url=gateway.base, headers=AUTH, timeout=60) as client:
        marker: str | None = ""
        while marker is not None:
            params = {"limit": 100, **({"nextpageOpaqueMarker": marker} if marker else {})}
            response = client.get(PACKAGES, params=params)
            response.raise_for_status()
            marker = response.json().get("nextpageOpaqueMarker")
            if marker is not None:
                paths.append(f"{PACKAGES}?limit=100&nextpageOpaqueMarker={marker}")
    markers.write_text("\n".join(paths) + "\n")
    return len(paths)


def wrk(
    base: str, path: str, keys: int, script: Path, markers: Path | None = None
) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) at ``CONCURRENCY`` for ``path`` % key, keys walked by stride
    (or the paths listed in ``markers``, walked likewise)."""
    env = dict(os.environ, NW_KEYS=str(keys), NW_PATH=path, NW_STRIDE=str(STRIDE % keys or 1))
    if markers is not None:
        env["NW_MARKERS"] = str(markers)
    result = subprocess.run(
        ["wrk", "-t", "1", "-c", str(CONCURRENCY), "-d", f"{WRK_SECONDS}s", "--latency",
         "-s", str(script), "-H", f"Authorization: Bearer {TOKEN}", base],
        capture_output=True, text=True, timeout=WRK_SECONDS + 60, check=True, env=env,
    )  # fmt: skip
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"{path}: non-2xx answers\n{result.stdout}")
    rps = float(_RPS.search(result.stdout).group(1))  # type: ignore[union-attr]
    latency = {p: float(v) * _UNIT[u] for p, v, u in _LATENCY.findall(result.stdout)}
    return rps, latency["50"], latency["99"]


def recurrence(keys: int, rps: float) -> str:
    every = keys / rps if rps else float("inf")
    note = "cache hits likely" if every < 2.0 else "no cache hits"
    return f"a key recurs every {every:.2f} s: {note}"


def timed_ops(gateway: Gateway, repo: Path, work: Path, n: int) -> dict[str, float]:
    """Medians (s) of OPS uploads, registrations and deletes through HTTP."""
    uploads: list[float] = []
    registrations: list[float] = []
    deletes: list[float] = []
    with httpx.Client(base_url=gateway.base, headers=AUTH, timeout=120) as client:
        for i in range(OPS):
            name = f"up{n}x{i}"
            path = work / f"{name}-1.0.0.tgz"
            path.write_bytes(archive_bytes(name, "1.0.0"))
            with path.open("rb") as handle:
                started = time.perf_counter()
                response = client.post(
                    PACKAGES,
                    data={"name": name, "artifactVersion": "1.0.0"},
                    files={"chart": (path.name, handle, "application/gzip")},
                )
                uploads.append(time.perf_counter() - started)
            if response.status_code != 201:
                raise RuntimeError(f"upload: {response.status_code} {response.text}")
        for i in range(OPS):
            # A chart pushed into the repository by other means, then registered by reference.
            name = f"reg{n}x{i}"
            (repo / f"{name}-1.0.0.tgz").write_bytes(archive_bytes(name, "1.0.0"))
            started = time.perf_counter()
            response = client.post(
                PACKAGES,
                json={"name": name, "artifactVersion": "1.0.0", "packageUri": f"{name}:1.0.0"},
            )
            registrations.append(time.perf_counter() - started)
            if response.status_code != 201:
                raise RuntimeError(f"registration: {response.status_code} {response.text}")
        for prefix in ("up", "reg"):
            for i in range(OPS):
                started = time.perf_counter()
                response = client.delete(f"{PACKAGES}/{prefix}{n}x{i}-1.0.0")
                deletes.append(time.perf_counter() - started)
                if response.status_code != 204:
                    raise RuntimeError(f"delete: {response.status_code} {response.text}")
    return {
        "upload": statistics.median(uploads),
        "registration": statistics.median(registrations),
        "delete": statistics.median(deletes),
    }


def run_size(n: int, script: Path) -> dict[str, float]:
    print(f"\n== {n} charts ==", flush=True)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"netweave-scale-{n}-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        repo = Path(tmp) / "repo"
        work = Path(tmp) / "work"
        work.mkdir()
        t0 = time.perf_counter()
        fill_repository(repo, n)
        asyncio.run(seed_store(data_dir, n))
        print(f"  filled: {n} archives and {n} records in {time.perf_counter() - t0:.1f} s")

        gateway = Gateway(data_dir, repo)
        try:
            gateway.wait_ready()
            seconds, total = first_list(gateway, limit=3600)
            print(
                f"  first start, indexing {n} archives (none saved; each inspected): "
                f"{seconds:.2f} s, total {total} [{load()}]",
                flush=True,
            )
        finally:
            gateway.stop()

        gateway = Gateway(data_dir, repo)
        try:
            gateway.wait_ready()
            seconds, total = first_list(gateway, limit=600)
            figures["first_list"] = seconds
            assert total == n, f"first list after start answered total {total}, not {n}"
            print(f"  first list after restart: {seconds:.3f} s (total {total}) [{load()}]")

            ops = timed_ops(gateway, repo, work, n)
            figures.update(ops)
            for key, value in ops.items():
                print(f"  {key}: median {value * 1000:.1f} ms of {OPS} [{load()}]", flush=True)

            # GET one and the bare handler alternate for GET_ROUNDS rounds, so a neighbour's
            # burst hits both; the ratio is the median of the rounds' ratios.
            one = f"{PACKAGES}/s%06d-1.0.0"
            ratios: list[float] = []
            p99s: list[float] = []
            for round_no in range(1, GET_ROUNDS + 1):
                rps, p50, p99 = wrk(gateway.base, one, n, script)
                bare_rps, _, _ = wrk(gateway.base, "/bench/bare?k=%d", n, script)
                ratios.append(rps / bare_rps)
                p99s.append(p99)
                print(
                    f"  round {round_no}: GET one, rotating ids, c={CONCURRENCY}: {rps:.0f} "
                    f"req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms ({recurrence(n, rps)}); bare "
                    f"Litestar handler, same model: {bare_rps:.0f} req/s; ratio "
                    f"{rps / bare_rps:.2f} [{load()}]",
                    flush=True,
                )
            figures.update(get_p99=statistics.median(p99s), get_vs_bare=statistics.median(ratios))
            print(
                f"  GET one / bare, median of {GET_ROUNDS} rounds: {figures['get_vs_bare']:.2f} "
                f"(target >= 0.6: {'met' if figures['get_vs_bare'] >= 0.6 else 'NOT met'})"
            )
            markers = work / "pages.txt"
            started = time.perf_counter()
            pages = page_paths(gateway, markers)
            walk = time.perf_counter() - started
            print(
                f"  first walk through all {pages} pages of 100, one client: {walk:.2f} s, "
                f"{walk / pages * 1000:.2f} ms a page (the first read of each page since "
                f"start) [{load()}]"
            )
            cpu = gateway.cpu_seconds()
            rps, p50, p99 = wrk(gateway.base, "", pages, script.with_name("pages.lua"), markers)
            per_page = (gateway.cpu_seconds() - cpu) / max(rps * WRK_SECONDS, 1) * 1000
            figures.update(list_rps=rps, list_p99=p99)
            print(
                f"  list page of 100, rotating pages by nextpageOpaqueMarker (all {pages}), "
                f"c={CONCURRENCY}: {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"(target <= 20 ms; pages after a marker are never cached: each is one query "
                f"joining the views stored in the package rows) [{load()}]; server CPU "
                f"{per_page:.2f} ms per page"
            )
            # The floor under that p99: the bare handler at the same concurrency, right after
            # (a p99 the bare handler itself misses says the machine, not the page, set it).
            bare_rps, _, bare_p99 = wrk(gateway.base, "/bench/bare?k=%d", n, script)
            figures.update(bare_p99=bare_p99)
            print(
                f"  bare Litestar handler, same server, c={CONCURRENCY}: {bare_rps:.0f} req/s, "
                f"p99 {bare_p99:.1f} ms (the floor under the list's p99) [{load()}]"
            )
            offsets = max(1, n - 100)
            rps, p50, p99 = wrk(gateway.base, f"{PACKAGES}?limit=100&offset=%d", offsets, script)
            figures.update(offset_p99=p99)
            print(
                f"  list page of 100, rotating offsets (any position), c={CONCURRENCY}: "
                f"{rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms (a deep offset is "
                f"skipped row by row; {recurrence(offsets, rps)}) [{load()}]"
            )
            figures["rss"] = gateway.rss_mb()
            print(f"  gateway RSS after the load: {figures['rss']:.0f} MB (target <= 300 MB)")
        finally:
            gateway.stop()
    return figures


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_catalogue_scale needs wrk (Debian package 'wrk') as its load generator")
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000]
    limit = int(os.environ.get("NETWEAVE_BENCH_SCALE_MAX", "10000"))
    if not sys.argv[1:] and limit >= 100000:
        sizes.append(100000)
    with tempfile.TemporaryDirectory(prefix="netweave-scale-lua-") as tmp:
        script = Path(tmp) / "rotate.lua"
        script.write_text(LUA)
        script.with_name("pages.lua").write_text(LUA_MARKERS)
        results = {n: run_size(n, script) for n in sizes}
    base = results[sizes[0]]
    print(f"\nCatalogue scale, ratios against {sizes[0]} charts [{load()}]")
    for n in sizes[1:]:
        row = results[n]
        print(f"  {n} charts:")
        for key in ("upload", "registration", "delete"):
            ratio = row[key] / base[key]
            print(f"    {key} {ratio:.2f}x (target <= 1.2: {_verdict(ratio <= 1.2)})")
        for key in ("get_p99", "list_p99"):
            print(f"    {key} {row[key] / base[key]:.2f}x (no target; for the trend)")
        checks = (
            (f"first list {row['first_list']:.3f} s", "<= 1 s", row["first_list"] <= 1.0),
            (f"RSS {row['rss']:.0f} MB", "<= 300 MB", row["rss"] <= 300),
            (f"GET one / bare {row['get_vs_bare']:.2f}", ">= 0.6", row["get_vs_bare"] >= 0.6),
            (
                f"list p99 {row['list_p99']:.1f} ms (bare handler's p99 {row['bare_p99']:.1f} ms)",
                "<= 20 ms",
                row["list_p99"] <= 20,
            ),
        )
        for figure, target, met in checks:
            print(f"    {figure} (target {target}: {_verdict(met)})")


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


if __name__ == "__main__":
    main()

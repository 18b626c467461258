"""P3: upload a ~100 MB chart through the adapter vs the Helm SDK loading and linting it.

Run each side in a fresh process (``HOME`` must be a temporary directory at start)::

    HOME=$(mktemp -d) python netweave-helm/bench/bench_upload.py make /tmp/p3
    HOME=$(mktemp -d) python netweave-helm/bench/bench_upload.py sdk /tmp/p3
    HOME=$(mktemp -d) python netweave-helm/bench/bench_upload.py adapter /tmp/p3

Prints wall time and peak RSS growth (sampled from /proc/self/statm every 5 ms).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import sys
import tarfile
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
    print(f"made {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
    return archive


def sdk(directory: Path) -> None:
    import helm_python

    archive = directory / "big-1.0.0.tgz"
    with Peak() as peak:
        start = time.perf_counter()
        chart = helm_python.Chart.load(str(archive))
        chart.close()
        helm_python.lint(str(archive))
        elapsed = time.perf_counter() - start
    print(f"sdk load+lint: {elapsed:.3f} s, peak RSS growth {(peak.peak - peak.base) / 1e6:.1f} MB")


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

    async def run() -> float:
        await instance.start()
        try:
            start = time.perf_counter()
            await instance.upload_package(
                PackageUpload(name="big", version="1.0.0", archive=archive, checksum=checksum)
            )
            return time.perf_counter() - start
        finally:
            await instance.stop()

    with Peak() as peak:
        elapsed = asyncio.run(run())
    growth = (peak.peak - peak.base) / 1e6
    print(f"adapter upload: {elapsed:.3f} s, peak RSS growth {growth:.1f} MB")


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    {"make": make, "sdk": sdk, "adapter": adapter}[command](where)

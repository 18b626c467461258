"""Render bombs against the Helm adapter: the gateway process's RSS growth (target <= 50 MB).

``python bench_render_bombs.py`` (``HOME`` must be a temporary directory at start) builds, in a
temporary directory, a 251-byte chart whose template renders 20 million characters, and a clean
chart whose ConfigMap repeats a character ``.Values.n`` times. It then, in this one process
(the gateway's side: adapter, upload validation, previews):

1. uploads the bomb (Helm lint renders it: refused by the memory cap of the lint child);
2. uploads the clean chart, previews it with ``n = 2e7`` (refused by the memory cap of the
   render worker) and with ``n = 1e7`` (10 MB of manifest: refused by the 8 MiB preview output
   cap, or by the memory cap first when Go's collector lags, as on a loaded machine);
3. installs it with ``n = 2e7`` into the Kubernetes API emulator (Helm renders inside its
   install call, which runs in a render worker: refused by the memory cap, nothing stored);
4. upgrades a release of it (installed with ``n = 3``) to ``n = 2e7`` (likewise refused; the
   release stays at revision 1);
5. installs it with a loop that prints nothing (refused by the CPU cap, twice
   ``render.timeSeconds``: 5 s on a second instance whose time cap is 2.5 s, to keep the bench
   short; the first keeps the defaults).

One install and one upgrade within the caps run before the first step: the gateway loads the
Helm SDK for its own reads of releases once (tens of MB), which is no bomb's doing.

and prints, per step, the answer, its time and the peak RSS growth of this process over its
RSS before the first step (sampled every 5 ms from /proc/self/statm), then ``RESULT <max
growth MB>``. Rendering the same previews in-process (as before the render child) grew the
gateway by ~750 MB.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")
BOMB = b"{{- range until 20000000 }}x{{- end }}\n"
LOOP = (
    b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-loop\n"
    b'data:\n  v: "{{ range until (int .Values.n) }}x{{ end }}'
    b'{{ range until (int .Values.spin) }}{{ range until 1000 }}{{ end }}{{ end }}"\n'
)


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class Peak:
    """Peak RSS of this process while the block runs."""

    def __init__(self) -> None:
        self.peak = rss()
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


def chart(directory: Path, name: str, template: bytes, values: bytes) -> Path:
    files = {
        "Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: 1.0.0\n".encode(),
        "values.yaml": values,
        "templates/t.yaml": template,
    }
    archive = directory / f"{name}-1.0.0.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


async def main(work: Path, kubeconfig: Path) -> float:
    from netweave.adapters import DeploymentChange, DeploymentSpec, OperationContext, PackageUpload
    from netweave.errors import NetweaveError
    from netweave_helm.adapter import HelmAdapter
    from netweave_helm.config import HelmConfig

    def instance(name: str, render: dict[str, float]) -> HelmAdapter:
        config = HelmConfig.model_validate(
            {
                "storage": {"kind": "local", "repositoryDir": str(work / name / "repo")},
                "dataDir": str(work / name),
                "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
                "render": render,
            }
        )
        return HelmAdapter(name, config)

    # The default caps; the CPU bomb on an instance whose time cap is 2.5 s (5 s of CPU).
    adapter, quick = instance("bench", {}), instance("quick", {"timeSeconds": 2.5})
    await adapter.start()
    await quick.start()
    bomb = chart(work, "bomb", BOMB, b"{}\n")
    loop = chart(work, "loop", LOOP, b"n: 1\nspin: 0\n")

    def upload(path: Path, name: str) -> PackageUpload:
        return PackageUpload(
            name=name, version="1.0.0", archive=path, archive_size=path.stat().st_size
        )

    package = await adapter.upload_package(upload(loop, "loop"))
    quick_package = await quick.upload_package(upload(loop, "loop"))

    def preview(n: int) -> Any:
        spec = DeploymentSpec(
            deployment_id="d", name="r", namespace="bench", package=package, values={"n": n}
        )
        return adapter.preview_deployment(spec, None)

    operations = iter(range(1_000_000))

    def context() -> OperationContext:
        number = next(operations)
        return OperationContext(f"op{number}", f"key{number}")

    def install(name: str, values: dict[str, int], on: HelmAdapter = adapter) -> Any:
        chart = quick_package if on is quick else package
        spec = DeploymentSpec(
            deployment_id=name, name=name, namespace="bench", package=chart, values=values
        )
        return on.create_deployment(spec, context())

    def upgrade(name: str, n: int) -> Any:
        change = DeploymentChange(values={"n": n}, values_mode="merge")
        return adapter.update_deployment(f"bench/{name}", change, context())

    # Within the caps, before measuring: the gateway's own SDK (reads of releases) loads once.
    await install("warm", {"n": 3})
    await upgrade("warm", 4)
    await install("warm-quick", {"n": 3}, quick)
    steps = {
        "upload of the 251-byte lint bomb": lambda: adapter.upload_package(upload(bomb, "bomb")),
        "preview with n = 2e7": lambda: preview(20_000_000),
        "preview with n = 1e7": lambda: preview(10_000_000),
        "install with n = 2e7": lambda: install("boom", {"n": 20_000_000}),
        "upgrade to n = 2e7": lambda: upgrade("warm", 20_000_000),
        "install looping without output": lambda: install("spin", {"spin": 1_000_000}, quick),
    }
    base = rss()
    worst = 0.0
    try:
        for label, step in steps.items():
            started = time.monotonic()
            with Peak() as peak:
                try:
                    await step()
                    answer = "accepted"
                except NetweaveError as exc:
                    answer = f"{exc.status} {exc.details.get('cap', '')} cap: {exc.message[:90]}"
            growth = (peak.peak - base) / 1e6
            worst = max(worst, growth)
            print(
                f"{label}: {answer} ({time.monotonic() - started:.2f} s, "
                f"gateway RSS growth {growth:.1f} MB)"
            )
    finally:
        await adapter.stop()
        await quick.stop()
    return worst


if __name__ == "__main__":
    from netweave.testing.k8s import KubernetesEmulator

    with tempfile.TemporaryDirectory() as tmp, KubernetesEmulator() as k8s:
        kubeconfig = k8s.write_kubeconfig(Path(tmp) / "kubeconfig")
        worst = asyncio.run(main(Path(tmp), kubeconfig))
        releases = sorted(
            (s["metadata"]["labels"]["name"], s["metadata"]["labels"]["status"])
            for s in k8s.list("v1", "Secret", "bench", label_selector="owner=helm")
        )
        print(f"Helm release records afterwards: {releases}")
    print(f"RESULT {worst:.1f}")
    sys.exit(0 if worst <= 50 else 1)

"""P3 with S3 as the chart store: the ~98 MB chart of ``bench_upload.py`` uploaded through HTTP
to a real ``netweave serve`` whose Helm instance keeps its charts in an S3 bucket (moto's S3
server on loopback), and the gateway process's peak RSS growth during the upload (target
<= 50 MB: the archive goes from the upload spool to the bucket in 8 MB parts, two in flight, and
never sits whole in the gateway's memory).

``python bench_upload_s3.py`` (what ``nox -s bench`` runs; ``HOME`` must be a temporary
directory at start). Each round is a fresh gateway process and a fresh prefix in the bucket; the
medians are printed with the load average. What it does not measure: a real S3's latency and
bandwidth (moto on loopback keeps the parts in its own memory, in its own process).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bench_upload import _status_kb, load, make

ROUNDS = 3
TOKEN = "bench-token-" + "s" * 32  # a throwaway token for a loopback benchmark
KEY_ID, SECRET = "bench", "bench-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    from netweave.testing import processes

    processes.stop(process)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@contextlib.contextmanager
def gateway(work: Path, storage: dict[str, object]) -> Iterator[tuple[str, int]]:
    work.mkdir(parents=True, exist_ok=True)
    config = work / "netweave.yaml"
    dms = {"name": "helm-s3", "type": "helm", "default": True, "config": {"storage": storage}}
    config.write_text(json.dumps({"plugins": {"dms": [dms]}}))  # JSON is YAML
    port = free_port()
    env = dict(os.environ, NETWEAVE_API_TOKEN=TOKEN)
    args = ["serve", "--port", str(port), "--config", str(config), "--data-dir", str(work)]
    with (work / "gateway.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "netweave", *args], env=env, stdout=log, stderr=log
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", process)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            stop(process)


def one_round(directory: Path, endpoint: str, bucket: str, n: int) -> tuple[float, float, int]:
    import httpx

    archive = directory / "big-1.0.0.tgz"
    storage = {
        "kind": "s3",
        "repositoryUrl": f"s3://{bucket}/round{n}",
        "region": "us-east-1",
        "endpoint": endpoint,
        "accessKeyId": KEY_ID,
        "secretAccessKey": SECRET,
    }
    with gateway(directory / f"gateway-{n}", storage) as (base, pid):
        before = _status_kb(pid, "VmRSS")
        with httpx.Client(base_url=base, timeout=600) as client, archive.open("rb") as handle:
            start = time.perf_counter()
            response = client.post(
                "/o2dms/v1/nfDeploymentDescriptors",
                headers={"Authorization": f"Bearer {TOKEN}"},
                data={"name": "big", "artifactVersion": "1.0.0"},
                files={"chart": (archive.name, handle, "application/gzip")},
            )
            elapsed = time.perf_counter() - start
        if response.status_code != 201:
            raise RuntimeError(f"upload answered {response.status_code}: {response.text}")
        peak = _status_kb(pid, "VmHWM")
    return elapsed, (peak - before) / 1e3, stored_size(endpoint, bucket, f"round{n}")


def stored_size(endpoint: str, bucket: str, prefix: str) -> int:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    return int(client.head_object(Bucket=bucket, Key=f"{prefix}/big-1.0.0.tgz")["ContentLength"])


def main() -> None:
    import boto3

    with tempfile.TemporaryDirectory(prefix="netweave-p3-s3-") as tmp, moto_server() as endpoint:
        directory = Path(tmp)
        archive = make(directory)
        size = archive.stat().st_size
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        ).create_bucket(Bucket="bench-charts")
        runs = []
        for n in range(ROUNDS):
            elapsed, growth, stored = one_round(directory, endpoint, "bench-charts", n)
            if stored != size:
                raise RuntimeError(f"the bucket holds {stored} bytes of a {size}-byte archive")
            runs.append((elapsed, growth))
            print(
                f"  round {n + 1}: {elapsed:.3f} s, gateway peak RSS growth {growth:.1f} MB "
                f"[{load()}]",
                flush=True,
            )
    seconds = statistics.median(t for t, _ in runs)
    growth = statistics.median(g for _, g in runs)
    verdict = "met" if growth <= 50 else "NOT met"
    print(f"P3 with S3 as the store: a {size / 1e6:.0f} MB chart through HTTP to netweave serve")
    print(
        f"  upload until the 201 (validation, then the archive streamed to the bucket): "
        f"{seconds:.3f} s (median of {ROUNDS}, fresh gateway each)"
    )
    print(
        f"  gateway process peak RSS growth {growth:.1f} MB (target <= 50 MB: {verdict}) [{load()}]"
    )


if __name__ == "__main__":
    main()

"""Real ``netweave serve`` processes on a fresh PostgreSQL database, with the slow adapter."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import netweave
from netweave.testing import processes
from support.postgres import temporary_database

TOKEN = "resilience-token-" + "r" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOWFIX_DIR = Path(__file__).resolve().parent / "slowfix"
START_TIMEOUT = 60.0
TERMINAL = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED"})


@contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """A fresh database (plain ``postgresql://`` URL), dropped afterwards."""
    with temporary_database(prefix) as url:
        assert url is not None  # required: an unreachable server already skipped or failed
        yield url


def install_slowfix(site: Path) -> str:
    """Register the slow adapter's entry point (a ``.dist-info`` on the child's path)."""
    info = site / "netweave_slowfix-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: netweave-slowfix\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[netweave.adapters]\nslowfix = netweave_slowfix:SlowAdapter\n"
    )
    return os.pathsep.join([str(site), str(SLOWFIX_DIR)])


def write_config(
    path: Path, *, store_url: str, dsn: str, before: float, after: float, lease: float,
    workers: int,
) -> Path:  # fmt: skip
    path.write_text(
        "logFormat: json\n"
        f"store: {{url: '{store_url}'}}\n"
        f"operations: {{leaseSeconds: {lease}, pollInterval: 0.1, workers: {workers}}}\n"
        "plugins:\n  dms:\n"
        f"    - {{name: slow, type: slowfix, default: true, config: "
        f"{{dsn: '{dsn}', before: {before}, after: {after}}}}}\n"
    )
    return path


class Replica:
    """One ``netweave serve`` process; ``url`` once it listens."""

    def __init__(self, config: Path, data_dir: Path, pythonpath: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
        env["NETWEAVE_API_TOKEN"] = TOKEN
        # The child imports the netweave this test imported (a worktree, not the installed one).
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, str(Path(netweave.__file__).parents[1])])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "netweave", "serve", "--host", "127.0.0.1", "--port", "0",
             "--config", str(config), "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        self.stderr: list[str] = []
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.process.stdout, lines), daemon=True).start()
        threading.Thread(target=self._keep, daemon=True).start()
        url = None
        deadline = time.monotonic() + START_TIMEOUT
        while url is None and time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is not None and line.startswith("netweave listening on "):
                url = line.removeprefix("netweave listening on ").strip()
        if url is None:
            self.stop()
            raise AssertionError(
                f"no 'listening' line; exit {self.process.poll()}: {''.join(self.stderr)[-3000:]}"
            )
        self.url: str = url

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _keep(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        processes.stop(self.process, grace=20)


async def counts(dsn: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """(calls, executions) rows recorded by the slow adapter."""
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        calls = await conn.fetch("SELECT key, operation_id, pid FROM slow_calls")
        done = await conn.fetch("SELECT key, operation_id, pid FROM slow_executions")
    finally:
        await conn.close()
    return list(calls), list(done)


async def execution_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM slow_executions"))
    finally:
        await conn.close()


async def all_operations(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in range(50):
        body = (
            await client.get("/o2dms/v1/operations", params={"limit": 1000, "offset": page * 1000})
        ).json()
        out.extend(body["items"])
        if len(out) >= body["total"]:
            break
    return out


async def register_package(client: httpx.AsyncClient) -> None:
    """Register the package every resilience test deploys (``app-1.0.0``)."""
    registered = await client.post(
        "/o2dms/v1/nfDeploymentDescriptors",
        json={"name": "app", "artifactVersion": "1.0.0", "packageUri": "oci://x/app"},
    )
    assert registered.status_code == 201, registered.text


async def create_deployment(client: httpx.AsyncClient, n: int) -> tuple[str, str]:
    """Create deployment ``web-<n>`` of that package: (its deployment id, its operation id)."""
    created = await client.post(
        "/o2dms/v1/nfDeployments", json={"name": f"web-{n}", "packageId": "app-1.0.0"}
    )
    assert created.status_code == 201, created.text
    operation_id = created.headers["link"].split("/operations/")[1].split(">")[0]
    return str(created.json()["deploymentId"]), operation_id


async def wait_all_terminal(
    client: httpx.AsyncClient, expected: set[str], seconds: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    ops: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        ops = [o for o in await all_operations(client) if o["operationId"] in expected]
        if len(ops) == len(expected) and all(o["state"] in TERMINAL for o in ops):
            return ops
        await asyncio.sleep(0.3)
    states = sorted(o["state"] for o in ops)
    raise AssertionError(f"not all terminal after {seconds} s: {len(ops)} found, {states[:40]}")

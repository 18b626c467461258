"""End-to-end tests across distributions: the real ``netweave serve`` process, adapters loaded
from configuration through their entry points, Kubernetes API emulators in this process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from netweave.testing import require_backend

TOKEN = "e2e-token-" + "e" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("NETWEAVE_SHARED_DIR", REPO.parent / "shared"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gateway:
    url: str
    data_dir: Path
    config: Path
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=60)

    def wait_operation(self, client: httpx.Client, response: httpx.Response) -> dict[str, object]:
        link = response.headers.get("link") or response.headers["location"]
        operation_id = link.split("/operations/")[1].split(">")[0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = client.get(f"/o2dms/v1/operations/{operation_id}").json()
            if body["state"] in {"COMPLETED", "FAILED", "FAILED_TEMP"}:
                return dict(body)
            time.sleep(0.05)
        raise AssertionError(f"operation {operation_id} did not finish: {body}")


def start_gateway(data_dir: Path, config_text: str, home: Path) -> Gateway:
    config = data_dir / "netweave.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text)
    port = free_port()
    log = data_dir / f"gateway-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    # helm-python-sdk reads HOME only from the process's initial environment.
    env.update(HOME=str(home), NETWEAVE_API_TOKEN=TOKEN, NETWEAVE_LOG_FORMAT="json")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "netweave", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--config", str(config), "--data-dir", str(data_dir)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    gateway = Gateway(f"http://127.0.0.1:{port}", data_dir, config, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{gateway.url}/readyz", timeout=2).status_code == 200:
                return gateway
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    stop_gateway(gateway)
    raise AssertionError(f"gateway not ready:\n{log.read_text()}")


def stop_gateway(gateway: Gateway) -> None:
    if gateway.process.poll() is None:
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait(timeout=10)


@pytest.fixture
def gateway_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def chart_path() -> Path:
    chart = shared_dir() / "charts" / "hello-world-0.1.0.tgz"
    if not chart.is_file():
        require_backend(f"the shared test charts are missing ({chart})")
    return chart

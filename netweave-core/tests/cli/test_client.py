"""The ``netweave`` client commands against a real gateway served over HTTP on loopback."""

from __future__ import annotations

import io
import json
import random
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from click.testing import CliRunner
from netweave.api.app import create_app
from netweave.cli.client import ProgressReader
from netweave.cli.main import main
from netweave.config.loading import register_adapter_hooks
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.testing.gateway import TOKEN, gateway_settings
from pydantic import SecretStr
from support.memory_adapter import MemoryAdapter


class Served:
    def __init__(self, url: str, adapter: MemoryAdapter) -> None:
        self.url = url
        self.adapter = adapter


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The gateway with the memory adapter, served by uvicorn (lifespan on: store, worker) in
    its own thread and event loop."""
    adapter = MemoryAdapter()
    settings = gateway_settings(tmp_path / "data")
    settings.store.url = SecretStr(f"sqlite:///{tmp_path / 'netweave.db'}")
    pm = make_plugin_manager()
    assert not register_adapter_hooks(pm, {MemoryAdapter})
    app = create_app(settings, registry=AdapterRegistry({"memory": adapter}), plugin_manager=pm)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # bounded: 10 s
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield Served(f"http://127.0.0.1:{port}", adapter)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _chart(path: Path, name: str = "hello", version: str = "0.1.0", pad: int = 0) -> Path:
    """A chart archive; ``pad`` bytes of incompressible data make it span many chunks."""
    with tarfile.open(path, "w:gz") as archive:
        for member, data in (
            (f"{name}/Chart.yaml", f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode()),
            (f"{name}/blob.bin", random.Random(pad).randbytes(pad)),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _run(served: Served, *args: str, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner()
    environment = {"NETWEAVE_URL": served.url, "NETWEAVE_API_TOKEN": TOKEN, **(env or {})}
    return runner.invoke(main, list(args), env=environment, catch_exceptions=False)


def test_upload_list_get_deploy_wait_logs(served: Served, tmp_path: Path) -> None:
    chart = _chart(tmp_path / "hello-0.1.0.tgz", pad=600_000)
    up = _run(served, "packages", "upload", str(chart), "-o", "json")
    assert up.exit_code == 0, up.output
    package = json.loads(up.stdout)
    assert package["packageId"] == "hello-0.1.0"
    import hashlib

    assert package["checksum"] == f"sha256:{hashlib.sha256(chart.read_bytes()).hexdigest()}"

    listed = _run(served, "package", "list")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["PACKAGEID", "NAME", "ARTIFACTVERSION"]
    assert [r.split()[0] for r in rows] == ["hello-0.1.0"]

    got = _run(served, "packages", "get", "hello-0.1.0", "-o", "yaml")
    assert yaml.safe_load(got.stdout)["name"] == "hello"

    values = tmp_path / "values.yaml"
    values.write_text("replicaCount: 2\n")
    created = _run(served, "deployments", "create", "--name", "web", "--package", "hello-0.1.0",
                   "-f", str(values), "-o", "json")  # fmt: skip
    assert created.exit_code == 0, created.output
    deployment = json.loads(created.stdout)
    assert deployment["values"] == {"replicaCount": 2}
    ops = _run(served, "operations", "list", "--deployment", deployment["deploymentId"],
               "-o", "json")  # fmt: skip
    (operation,) = json.loads(ops.stdout)
    waited = _run(served, "operations", "wait", operation["operationId"], "--timeout", "20",
                  "-o", "json")  # fmt: skip
    assert waited.exit_code == 0, waited.output
    assert json.loads(waited.stdout)["state"] == "COMPLETED"

    shown = _run(served, "deployment", "get", deployment["deploymentId"], "-o", "json")
    assert json.loads(shown.stdout)["status"] == "DEPLOYED"
    listed_deployments = _run(served, "deployments", "list")
    assert "web" in listed_deployments.stdout

    release_ref = next(iter(served.adapter.releases))
    served.adapter.logs[release_ref] = ["first line", "second line"]
    logs = _run(served, "deployments", "logs", deployment["deploymentId"])
    assert logs.exit_code == 0, logs.output
    assert logs.stdout.splitlines() == ["first line", "second line"]
    tail = _run(served, "deployments", "logs", deployment["deploymentId"], "--tail", "1")
    assert tail.stdout.splitlines() == ["second line"]


def test_create_with_wait_and_delete_with_wait(served: Served, tmp_path: Path) -> None:
    assert _run(served, "packages", "upload", str(_chart(tmp_path / "c.tgz"))).exit_code == 0
    created = _run(served, "deployments", "create", "--name", "api", "--package", "hello-0.1.0",
                   "--wait", "-o", "json")  # fmt: skip
    assert created.exit_code == 0, created.output
    final = json.loads(created.stdout)
    assert (final["operationType"], final["state"]) == ("CREATE", "COMPLETED")
    deleted = _run(served, "deployments", "delete", final["deploymentId"], "--wait", "-o", "json")
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout)["operationType"] == "DELETE"


def test_a_failed_operation_exits_6_with_its_problem(served: Served, tmp_path: Path) -> None:
    from netweave.errors import InvalidInput

    assert _run(served, "packages", "upload", str(_chart(tmp_path / "c.tgz"))).exit_code == 0
    served.adapter.fail("create_deployment", InvalidInput("the values are wrong"))
    created = _run(served, "deployments", "create", "--name", "bad", "--package", "hello-0.1.0",
                   "--wait")  # fmt: skip
    assert created.exit_code == 6, created.output
    assert "FAILED" in created.output


def test_refusals_are_readable_with_exit_4(served: Served, tmp_path: Path) -> None:
    missing = _run(served, "packages", "get", "nope-1.0.0")
    assert missing.exit_code == 4
    assert missing.stderr.startswith("error: 404 ")
    chart = _chart(tmp_path / "c.tgz")
    assert _run(served, "packages", "upload", str(chart)).exit_code == 0
    again = _run(served, "packages", "upload", str(chart))
    assert again.exit_code == 4
    assert "409" in again.stderr
    unauthorised = _run(served, "packages", "list", env={"NETWEAVE_API_TOKEN": "wrong-token-x"})
    assert unauthorised.exit_code == 4
    assert "401" in unauthorised.stderr


def test_token_from_option_and_unreachable_server(served: Served) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["packages", "list", "--url", served.url, "--token", TOKEN], env={})
    assert ok.exit_code == 0, ok.output
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    down = runner.invoke(main, ["packages", "list", "--url", closed], env={})
    assert down.exit_code == 5
    assert "cannot reach" in down.stderr


def test_upload_streams_the_file_in_chunks(tmp_path: Path) -> None:
    """httpx's multipart encoder reads the archive through the reader in bounded chunks (the
    file never sits whole in memory), and the progress sees every byte."""
    import httpx

    chart = _chart(tmp_path / "big.tgz", pad=2_000_000)
    size = chart.stat().st_size
    reads: list[int] = []
    with chart.open("rb") as handle:
        reader = ProgressReader(handle, reads.append)
        request = httpx.Request(
            "POST", "http://127.0.0.1/x", files={"chart": ("big.tgz", reader, "application/gzip")}
        )
        assert int(request.headers["Content-Length"]) > size  # known up front, not buffered
        total = sum(len(part) for part in request.stream)  # type: ignore[union-attr]
    assert total > size
    assert sum(reads) == size
    assert len([r for r in reads if r]) > 10
    assert max(reads) <= 1024 * 1024

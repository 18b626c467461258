"""The README's "try deployments without a cluster" walkthrough, as a new user runs it: the
emulator and the gateway as real processes, the sample chart archived with tar, then only the
``netweave`` command — upload (with the progress bar a terminal shows), deploy and follow the
operation, list, follow logs and leave them with Ctrl-C, status. Then the gateway's JSON log:
every line of that deployment create is found by its request id, from the HTTP line to the Helm
adapter's install, and the upload's line has its package id, size, checksum and duration.

One deviation from the README: the gateway listens on a free port (``--port 0``) and the CLI
is pointed at it with ``NETWEAVE_URL``, since 8080 may be taken on a shared machine."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.testing import processes, require_backend

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0


def _netweave() -> list[str]:
    # The README runs .venv/bin/netweave: the script installed beside this interpreter.
    script = Path(sys.executable).parent / "netweave"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "netweave"]


def _read_until(process: subprocess.Popen[str], prefix: str, seen: list[str]) -> str:
    """The first stdout line starting with ``prefix`` (lines before it kept in ``seen``)."""
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if not ready:
            if process.poll() is not None:
                break
            continue
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise AssertionError(f"no {prefix!r} line; exit code {process.poll()}; output {seen}")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, Path]]:
    """The emulator, then ``netweave serve`` on it from a fresh directory (its ``./.netweave``).
    Yields the CLI's environment, the gateway's log file and the kubeconfig."""
    if shutil.which("tar") is None:
        require_backend("tar is needed (the README archives the sample chart with it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETWEAVE_")}
    env.pop("KUBECONFIG", None)
    kubeconfig = tmp_path / "emulator.kubeconfig"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "netweave.testing.k8s", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    gateway: subprocess.Popen[str] | None = None
    try:
        _read_until(emulator, "kubernetes API emulator listening on ", [])
        log = tmp_path / "gateway.log"
        with log.open("w") as log_file:
            gateway = subprocess.Popen(
                [*_netweave(), "serve", "--port", "0"],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=log_file,  # not a terminal: JSON lines, as in a container
                text=True,
                env={**env, "KUBECONFIG": str(kubeconfig)},
            )
        seen: list[str] = []
        url = _read_until(gateway, "netweave listening on ", seen)
        # "printed at first start": the generated token, once.
        (token,) = [line.split("=", 1)[1].strip() for line in seen if "NETWEAVE_API_TOKEN=" in line]
        yield {**env, "NETWEAVE_URL": url, "NETWEAVE_API_TOKEN": token}, log, kubeconfig
    finally:
        if gateway is not None:
            processes.stop(gateway)
        processes.stop(emulator)


def _cli(env: dict[str, str], *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_netweave(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def _upload_on_a_terminal(env: dict[str, str], archive: Path) -> tuple[int, str, str]:
    """``netweave packages upload`` with its stderr on a pseudo-terminal (where the progress
    bar is drawn), its stdout a pipe."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [*_netweave(), "packages", "upload", str(archive)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        terminal = b""
        deadline = time.monotonic() + CLI_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                terminal += chunk
            elif process.poll() is not None:
                break
        out, _ = process.communicate(timeout=CLI_TIMEOUT)
        return process.returncode, out, terminal.decode("utf-8", "replace")
    finally:
        os.close(master)


def _lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_the_readme_walkthrough_with_the_cli_and_one_request_id_through_the_log(
    tmp_path: Path, started: tuple[dict[str, str], Path, Path]
) -> None:
    env, log, kubeconfig = started
    archive = tmp_path / "hello-netweave-0.1.0.tgz"
    # The README's tar command, from the repository's root.
    subprocess.run(
        ["tar", "czf", str(archive), "-C", "docs/examples", "hello-netweave"],
        cwd=REPO,
        check=True,
    )

    code, out, terminal = _upload_on_a_terminal(env, archive)
    assert code == 0, (out, terminal)
    assert "hello-netweave-0.1.0" in out and "AVAILABLE" in out
    # click's bar: the label and a full percentage, drawn on the terminal only.
    assert f"uploading {archive.name}" in terminal and "100%" in terminal, terminal

    created = _cli(
        env,
        *("deployments", "create", "--name", "hello", "--namespace", "edge"),
        *("--package", "hello-netweave-0.1.0", "--wait", "-o", "json"),
    )
    assert created.returncode == 0, created.stdout + created.stderr
    operation = json.loads(created.stdout)
    assert operation["state"] == "COMPLETED"
    deployment_id = operation["deploymentId"]

    listed = _cli(env, "deployments", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (deployment,) = json.loads(listed.stdout)
    assert (deployment["deploymentId"], deployment["status"]) == (deployment_id, "DEPLOYED")

    # Follow the logs, see a line, leave with Ctrl-C.
    follower = subprocess.Popen(
        [*_netweave(), "deployments", "logs", deployment_id, "-f"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = _read_until(follower, "[k8s-emulator] container hello", [])
        assert first in ("started (image nginx:1.27)", "ready"), first
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=CLI_TIMEOUT)
    finally:
        processes.stop(follower)
    # The gateway still answers after a client left a followed stream (it used to hang).
    status = _cli(env, "deployments", "status", deployment_id)
    assert status.returncode == 0, status.stderr
    assert "DEPLOYED" in status.stdout
    operations = _cli(env, "operations", "list", "-o", "json")
    assert [o["state"] for o in json.loads(operations.stdout)] == ["COMPLETED"]

    # What the cluster holds.
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        held = client.AppsV1Api(api).read_namespaced_deployment("hello-hello-netweave", "edge")
    finally:
        api.close()
    assert held.spec.replicas == 1

    records = _lines(log)
    # The upload's line: package, adapter, size, checksum and duration as keys.
    (onboarded,) = [r for r in records if r.get("logger") == "netweave.packages"
                    and r.get("packageId") == "hello-netweave-0.1.0"]  # fmt: skip
    assert onboarded["size"] == archive.stat().st_size
    assert onboarded["checksum"].startswith("sha256:") and len(onboarded["checksum"]) == 71
    assert onboarded["adapter"] == "helm-local" and isinstance(onboarded["durationMs"], int)

    # The create's HTTP line gives its request id; every line of that create carries it.
    create_call = ("POST", "/o2dms/v1/nfDeployments")
    (post,) = [r for r in records if r.get("logger") == "netweave.access"
               and (r.get("method"), r.get("path")) == create_call]  # fmt: skip
    assert post["status"] == 201 and isinstance(post["durationMs"], float)
    request_id = post["requestId"]
    chain = [r for r in records if r.get("requestId") == request_id]
    by_logger = {r["logger"]: r for r in chain}
    operation_id = operation["operationId"]
    # HTTP → service → worker → Helm adapter.
    assert {"netweave.access", "netweave.deployments", "netweave.operations",
            "netweave_helm"} <= set(by_logger), [r.get("event") for r in chain]  # fmt: skip
    for logger in ("netweave.deployments", "netweave.operations", "netweave_helm"):
        line = by_logger[logger]
        assert line["operationId"] == operation_id, line
        assert line["deploymentId"] == deployment_id, line
        assert line["adapter"] == "helm-local", line
    # The package is a key where it is known: the service's line and the adapter's call.
    for logger in ("netweave.deployments", "netweave_helm"):
        assert by_logger[logger]["packageId"] == "hello-netweave-0.1.0", by_logger[logger]
    installed = [r for r in chain if r["logger"] == "netweave_helm"
                 and "installed release" in r["event"]]  # fmt: skip
    assert installed and installed[0]["release"] == "edge/hello"
    assert isinstance(installed[0]["durationMs"], int)
    assert isinstance(by_logger["netweave.operations"]["durationMs"], int)
    # No other request's lines carry this id.
    assert all(r.get("path") != "/o2dms/v1/nfDeployments" or r.get("method") == "POST"
               for r in chain)  # fmt: skip

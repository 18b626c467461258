"""``python -m netweave.testing.k8s`` runs the emulator on its own until interrupted."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from netweave.testing import processes

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(*args: str) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "netweave.testing.k8s", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def _read_until(lines: queue.Queue[str | None], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"output ended before {prefix!r}")
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise AssertionError(f"no {prefix!r} within {timeout} s")


def test_runs_on_the_given_port_serves_the_kubernetes_client_and_stops_on_sigint(
    tmp_path: Path,
) -> None:
    port = _free_port()
    kubeconfig = tmp_path / "kc"
    process, lines = _start("--port", str(port), "--kubeconfig", str(kubeconfig))
    try:
        url = _read_until(lines, "kubernetes API emulator listening on ", START_TIMEOUT)
        assert url == f"http://127.0.0.1:{port}"
        assert _read_until(lines, "kubeconfig: ", 5) == str(kubeconfig)
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        # Still serving a while after it printed (the old example stopped right away).
        time.sleep(0.5)
        assert process.poll() is None
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        with api_client:
            core = client.CoreV1Api(api_client)
            core.create_namespaced_config_map(
                "default", {"metadata": {"name": "try"}, "data": {"a": "1"}}
            )
            assert core.read_namespaced_config_map("try", "default").data == {"a": "1"}
            apps = client.AppsV1Api(api_client)
            apps.create_namespaced_deployment(
                "default",
                {
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                        },
                    },
                },
            )
            ready = None
            for _ in range(300):  # bounded: 30 s; the default controllers make it ready
                # As on a real cluster, status is empty until the controller has run.
                status = apps.read_namespaced_deployment("web", "default").status
                ready = status.ready_replicas if status is not None else None
                if ready == 2:
                    break
                time.sleep(0.1)
            assert ready == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert _read_until(lines, "stopped", 5) == ""
    finally:
        processes.stop(process)


def test_a_default_kubeconfig_and_a_busy_port(tmp_path: Path) -> None:
    process, lines = _start()
    try:
        url = _read_until(lines, "kubernetes API emulator listening on ", START_TIMEOUT)
        path = Path(_read_until(lines, "kubeconfig: ", 5))
        assert url in path.read_text()
        busy = int(url.rsplit(":", 1)[1])
        second = subprocess.run(
            [sys.executable, "-m", "netweave.testing.k8s", "--port", str(busy)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{busy}" in second.stderr
        path.unlink()
    finally:
        processes.stop(process)


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_refused(port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "netweave.testing.k8s", "--port", port],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "not a port number" in result.stderr

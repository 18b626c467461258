"""core's ``kubernetes`` client (``new_api_client``): credentials with an expiry are still
refreshed, but the loader's refresh hook (which re-assigns the host, scanning the whole
environment for proxy variables) no longer runs before every request."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from netweave.adapters import kubernetes as kube
from netweave.adapters.kubernetes import ObjectReader, new_api_client
from pydantic import SecretStr

HOW = "configure a cluster (test)"

# An exec credential plugin: a new token on each run, expiring in a minute (inside the loader's
# five minutes of skew: the loader takes it as expired and runs the plugin at every refresh).
PLUGIN = """
import datetime, json, pathlib, sys
runs = pathlib.Path(sys.argv[1])
n = int(runs.read_text() or 0) + 1 if runs.exists() else 1
runs.write_text(str(n))
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "kind": "ExecCredential",
    "status": {"token": f"token-{n}", "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")},
}))
"""


@dataclass
class Cluster:
    kubeconfig: Path | None = None
    kubeconfig_content: SecretStr | None = None
    context: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tokens: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.tokens.append(self.headers.get("Authorization", ""))
        body = json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def proxy_scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the environment scans for proxies of the client's ``host`` setter."""
    from kubernetes.client import configuration

    scans: list[int] = []
    real = configuration.getproxies

    def counted() -> dict[str, str]:
        scans.append(1)
        return real()

    monkeypatch.setattr(configuration, "getproxies", counted)
    return scans


def _kubeconfig(path: Path, url: str, user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


PATH = "/api/v1/namespaces/default/configmaps/x"


def test_an_expiring_token_is_refreshed_but_not_before_every_request(
    server: _Server, proxy_scans: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "AUTH_REFRESH_SECONDS", 0.5)
    plugin, runs = tmp_path / "plugin.py", tmp_path / "runs"
    plugin.write_text(PLUGIN)
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin), str(runs)],
        }
    }
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = new_api_client(Cluster(_kubeconfig(tmp_path / "kc", url, user)), "k", HOW)
    try:
        reader = ObjectReader(client, 5.0)
        started = time.monotonic()
        scans_before = len(proxy_scans)
        for _ in range(10):
            assert reader.get(PATH) == {"kind": "ConfigMap", "metadata": {"name": "x"}}
        burst = time.monotonic() - started
        # The hook ran at most once in the burst (twice if it spanned the interval): not once
        # per request (the plugin ran, and the host was re-set, ten times before).
        allowed = 1 + int(burst / 0.5)
        assert len(proxy_scans) - scans_before <= allowed
        assert int(runs.read_text()) <= 1 + allowed
        assert len(set(server.tokens)) <= allowed
        assert all(t.startswith("Bearer token-") for t in server.tokens)
        # Once the interval has passed, the next request runs the plugin again: a new token.
        last = server.tokens[-1]
        time.sleep(0.6)
        reader.get(PATH)
        assert server.tokens[-1] != last
        assert server.tokens[-1] == f"Bearer token-{int(runs.read_text())}"
    finally:
        client.close()


def test_a_static_token_is_sent_without_an_environment_scan_per_request(
    server: _Server, proxy_scans: list[int], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = new_api_client(Cluster(_kubeconfig(tmp_path / "kc", url, {"token": "t0"})), "k", HOW)
    try:
        reader = ObjectReader(client, 5.0)
        started = time.monotonic()
        scans_before = len(proxy_scans)
        for _ in range(20):
            reader.get(PATH)
        allowed = 1 + int((time.monotonic() - started) / kube.AUTH_REFRESH_SECONDS)
        assert len(proxy_scans) - scans_before <= allowed
        assert server.tokens == ["Bearer t0"] * 20
    finally:
        client.close()

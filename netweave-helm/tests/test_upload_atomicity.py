"""A failed answer never leaves a half-finished upload stored: whatever fails after the Helm
adapter wrote the chart to its repository — the package record, its event, the idempotency
record (real PostgreSQL refusing the insert), building the response — the client gets an
error, the package is not there (GET 404, not in the repository's files nor in its served
index), and the same request again is a 201, not a 409. For a multipart upload and for a
``packageUri`` registration, through the real HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import yaml
from chartkit import build_chart
from netweave.api.controllers import packages as package_routes
from netweave.config import FetchSettings, NotificationSettings
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.postgres import temporary_database
from registry import Registry, run_registry

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with temporary_database("nw_atomic") as url:
        assert url is not None
        yield url


class _Charts(http.server.BaseHTTPRequestHandler):
    directory = ""

    def do_GET(self) -> None:
        path = Path(self.directory) / self.path.lstrip("/")
        body = path.read_bytes() if path.is_file() else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def chart_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path / "served"
    directory.mkdir()
    handler = type("Handler", (_Charts,), {"directory": str(directory)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, pg_url: str) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "helm-local",
                "type": "helm",
                "default": True,
                "config": {"storage": {"kind": "local"}},
            }
        ],
    )
    settings.fetch = FetchSettings(allowedCidrs=["127.0.0.0/8"])  # the chart server
    settings.notifications = NotificationSettings(allowPrivateCallbacks=True, testCallback=False)
    async with running_gateway(tmp_path, settings=settings, store_url=pg_url) as client:
        yield client


@contextlib.asynccontextmanager
async def refused_insert(pg_url: str, table: str) -> AsyncIterator[None]:
    """PostgreSQL refuses every insert into ``table`` while the block runs."""
    conn = await asyncpg.connect(pg_url, timeout=5)
    try:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION injected_failure() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
        )
        await conn.execute(
            f"CREATE TRIGGER injected BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION injected_failure()"
        )
        try:
            yield
        finally:
            await conn.execute(f"DROP TRIGGER injected ON {table}")
    finally:
        await conn.close()


@contextlib.contextmanager
def failing_response(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Building the 201 fails (as a body or header the server cannot encode would)."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected failure while serialising the response")

    with monkeypatch.context() as patch:
        patch.setattr(package_routes, "model_response", broken)
        yield


Send = Callable[[GatewayClient, dict[str, str]], Any]


def sender(mode: str, archive: Path, name: str, version: str, base: str) -> Send:
    async def send(gw: GatewayClient, headers: dict[str, str]) -> httpx.Response:
        if mode == "multipart":
            with archive.open("rb") as handle:
                return await gw.post(
                    PACKAGES,
                    headers=headers,
                    data={"name": name, "artifactVersion": version},
                    files={"chart": (archive.name, handle, "application/gzip")},
                )
        uri = f"{base}/{archive.name}"
        body = {"name": name, "artifactVersion": version, "packageUri": uri}
        return await gw.post(PACKAGES, headers=headers, json=body)

    return send


async def assert_absent(gw: GatewayClient, repository: Path, name: str, version: str) -> None:
    assert (await gw.get(f"{PACKAGES}/{name}-{version}")).status_code == 404
    listed = (await gw.get(PACKAGES, params={"name": name})).json()
    assert listed["total"] == 0, listed
    assert not (repository / f"{name}-{version}.tgz").exists()
    # What Helm clients see of the repository (the gateway serves it).
    index = yaml.safe_load((await gw.get("/charts/index.yaml")).text)
    assert name not in (index.get("entries") or {}), index


@pytest.mark.parametrize("mode", ["multipart", "packageUri"])
async def test_every_failure_after_the_chart_is_stored_leaves_nothing(
    mode: str,
    tmp_path: Path,
    pg_url: str,
    chart_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, served = chart_server
    repository = tmp_path / "data" / "adapters" / "helm-local" / "charts"
    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Charts)
    steps: list[tuple[str, Callable[[], Any], dict[str, str]]] = [
        ("the package record", lambda: refused_insert(pg_url, "packages"), {}),
        ("its event", lambda: refused_insert(pg_url, "outbox"), {}),
        (
            "the idempotency record",
            lambda: refused_insert(pg_url, "idempotency_keys"),
            {"Idempotency-Key": f"atomic-{mode}"},
        ),
        ("the response", lambda: _async(failing_response(monkeypatch)), {}),
    ]
    if mode == "packageUri":
        # The same transaction and withdrawal as an upload once the chart is fetched: the
        # first and the last step are enough here (the test's time is bounded).
        steps = [steps[0], steps[-1]]
    async with gateway(tmp_path, pg_url) as gw:
        # A subscriber, so that every change records an event (the outbox step).
        subscription = await gw.post(
            "/o2dms/v1/subscriptions",
            json={"callbackUri": f"http://127.0.0.1:{listener.server_address[1]}/events"},
        )
        assert subscription.status_code == 201, subscription.text
        for index, (step, fault, headers) in enumerate(steps):
            name, version = f"atomic{index}", "1.0.0"
            archive = build_chart(served, name, version)
            send = sender(mode, archive, name, version, base)
            async with fault():
                failed = await send(gw, headers)
            assert failed.status_code >= 500, (step, failed.status_code, failed.text)
            assert failed.headers["content-type"].startswith("application/problem+json"), step
            await assert_absent(gw, repository, name, version)
            again = await send(gw, headers)
            assert again.status_code == 201, (step, again.text)
            assert "Idempotent-Replayed" not in again.headers, step
            assert (await gw.get(f"{PACKAGES}/{name}-{version}")).status_code == 200, step
            assert (repository / f"{name}-{version}.tgz").is_file(), step
    listener.server_close()


@contextlib.asynccontextmanager
async def _async(manager: contextlib.AbstractContextManager[None]) -> AsyncIterator[None]:
    with manager:
        await asyncio.sleep(0)
        yield


# -- the backend's own failures: an OCI registry that fails the push or its read-back ---------


class _RegistryProxy(http.server.BaseHTTPRequestHandler):
    """Forwards every request to the real docker-registry, except those matching ``fault``
    (method, path fragment), which get a 503 while the fault is set."""

    protocol_version = "HTTP/1.1"
    target = ""
    fault: list[tuple[str, str]]
    seen: list[tuple[str, str, int]]

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data.extend(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        body = self._body()
        if any(m == self.command and part in self.path for m, part in self.fault):
            self.seen.append((self.command, self.path, 503))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        host, port = self.target.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        skip = {"transfer-encoding", "connection", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        self.seen.append((self.command, self.path, answer.status))
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in skip:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


@pytest.fixture(scope="module")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("atomic-registry")) as running:
        yield running


def registry_tags(registry: Registry, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"{registry.url}/v2/{repository}/tags/list", timeout=10) as r:
            return list(json.loads(r.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return []


async def test_a_push_that_fails_or_cannot_be_read_back_leaves_no_tag(
    tmp_path: Path, oci_registry: Registry
) -> None:
    fault: list[tuple[str, str]] = []
    seen: list[tuple[str, str, int]] = []
    handler = type(
        "Proxy", (_RegistryProxy,), {"target": oci_registry.host, "fault": fault, "seen": seen}
    )
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    storage = {"kind": "oci", "url": f"oci://127.0.0.1:{proxy.server_address[1]}/atomic"}
    settings = gateway_settings(
        tmp_path / "data",
        dms=[{"name": "helm-oci", "type": "helm", "default": True, "config": {"storage": storage}}],
    )
    try:
        async with running_gateway(tmp_path, settings=settings) as gw:
            for name, failing in (
                ("pushfails", ("PUT", "/manifests/")),  # the push itself
                ("readfails", ("GET", "/blobs/")),  # reading back what was pushed
            ):
                archive = build_chart(tmp_path / "src", name, "1.0.0")
                send = sender("multipart", archive, name, "1.0.0", "")
                fault.append(failing)
                failed = await send(gw, {})
                fault.clear()
                assert failed.status_code >= 500, (name, failed.text)
                assert any(s == 503 for *_, s in seen), seen
                assert (await gw.get(f"{PACKAGES}/{name}-1.0.0")).status_code == 404
                assert registry_tags(oci_registry, f"atomic/{name}") == [], name
                again = await send(gw, {})
                assert again.status_code == 201, (name, again.text)
                assert registry_tags(oci_registry, f"atomic/{name}") == ["1.0.0"]
                seen.clear()
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)

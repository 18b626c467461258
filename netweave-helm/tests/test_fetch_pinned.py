"""Every fetch a client's content causes — an ``oci://`` packageUri (with the registry's token
realm and its blob redirect) and the dependencies a chart does not vendor — is made by the
gateway's own client through the fetch policy, never by the Helm SDK, and connects to the
address the policy checked. Through the real HTTP API, with the real docker-registry and
counting loopback listeners.

How "pinned" is shown: the registry, its token realm and its blob store are named
``*.pinned.test``, names only the policy's resolver knows (the test replaces that one lookup);
nothing else in the process (the Go SDK, the system resolver) could reach them, so a 201 means
every connection went to the address the policy checked. A name that answers loopback to one
lookup and the metadata address to the next is refused and sent nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import shutil
import socket
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import httpx
import pytest
import yaml
from chartkit import chart_files, subchart_files, write_tgz
from netweave.config import FetchSettings
from netweave.notifications.ssrf import CallbackPolicy
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from registry import Registry, run_registry

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
TOKEN = "t0k3n-for-the-test"
SCOPE = "repository:charts/hello-world:pull"


@dataclass
class Seen:
    """What one listener was asked: (path, Authorization header, User-Agent) per request."""

    requests: list[tuple[str, str | None, str]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def agents(self) -> set[str]:
        return {agent.split("/")[0] for _, _, agent in self.requests}


class _Counting(http.server.BaseHTTPRequestHandler):
    seen: Seen

    def log_message(self, format: str, *args: object) -> None:
        return None

    def record(self) -> None:
        self.seen.requests.append(
            (self.path, self.headers.get("Authorization"), self.headers.get("User-Agent", ""))
        )

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def proxy(self, target: str) -> None:
        accept = self.headers.get("Accept")
        request = urllib.request.Request(target, headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                kept = {
                    k: v
                    for k, v in response.headers.items()
                    if k.lower() in {"content-type", "docker-content-digest"}
                }
                self.answer(response.status, response.read(), kept)
        except urllib.error.HTTPError as exc:
            self.answer(exc.code, exc.read())


class _Realm(_Counting):
    """The registry's token service: a token for the anonymous pull scope."""

    def do_GET(self) -> None:
        self.record()
        if self.path == "/token?" + urllib.parse.urlencode({"service": "front", "scope": SCOPE}):
            self.answer(200, json.dumps({"token": TOKEN}).encode())
        else:
            self.answer(401)


class _Blobs(_Counting):
    """The registry's blob storage, where blob reads are redirected (like S3 behind one)."""

    registry = ""

    def do_GET(self) -> None:
        self.record()
        self.proxy(self.registry + self.path)


class _Front(_Counting):
    """A registry that wants a bearer token from its realm and redirects blob reads: the real
    docker-registry behind it holds the chart."""

    registry = ""
    realm = ""
    blobs = ""

    def do_GET(self) -> None:
        self.record()
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="{self.realm}",service="front",scope="{SCOPE}"'
            self.answer(401, b'{"errors": []}', {"WWW-Authenticate": challenge})
        elif "/blobs/" in self.path:
            self.answer(307, headers={"Location": self.blobs + self.path})
        else:
            self.proxy(self.registry + self.path)


@contextlib.contextmanager
def listening(handler: type[_Counting], **attributes: Any) -> Iterator[tuple[Seen, int]]:
    seen = Seen()
    cls = type(handler.__name__, (handler,), {"seen": seen, **attributes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), cls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Front:
    front: Seen
    realm: Seen
    blobs: Seen
    port: int


@contextlib.contextmanager
def front_registry(registry: Registry) -> Iterator[Front]:
    with (
        listening(_Realm) as (realm, realm_port),
        listening(_Blobs, registry=registry.url) as (blobs, blobs_port),
        listening(
            _Front,
            registry=registry.url,
            realm=f"http://auth.pinned.test:{realm_port}/token",
            blobs=f"http://blobs.pinned.test:{blobs_port}",
        ) as (front, port),
    ):
        yield Front(front, realm, blobs, port)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, charts_dir: Path) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        chart = str(charts_dir / "hello-world-0.1.0.tgz")
        for path in ("charts", "deps"):
            helm_python.push(chart, f"oci://{running.host}/{path}", plain_http=True)
        yield running


@pytest.fixture(autouse=True)
def test_names(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """``*.pinned.test`` is 127.0.0.1 for the policy's resolver only; ``*.rebind.test`` is
    127.0.0.1 at its first lookup and the cloud metadata address after."""
    lookups: Counter[str] = Counter()
    real = CallbackPolicy._lookup

    async def lookup(name: str, port: int) -> list[Any]:
        lookups[name] += 1
        if name.endswith(".pinned.test"):
            address = "127.0.0.1"
        elif name.endswith(".rebind.test"):
            address = "127.0.0.1" if lookups[name] == 1 else "169.254.169.254"
        else:
            return await real(name, port)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(CallbackPolicy, "_lookup", staticmethod(lookup))
    return lookups


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, *, allow_loopback: bool, dependency_repositories: tuple[str, ...] = ()
) -> AsyncIterator[GatewayClient]:
    settings = gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "helm-local",
                "type": "helm",
                "default": True,
                "config": {
                    "storage": {"kind": "local"},
                    "dependencyRepositories": [{"url": u} for u in dependency_repositories],
                },
            }
        ],
    )
    # The gateway-wide allow-list, handed to the adapter by the loader.
    settings.fetch = FetchSettings(allowedCidrs=["127.0.0.0/8"] if allow_loopback else [])
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


def stored_archive(tmp_path: Path, name: str) -> Path:
    return tmp_path / "data" / "adapters" / "helm-local" / "charts" / name


async def register(gw: GatewayClient, uri: str) -> httpx.Response:
    body = {"name": "hello-world", "artifactVersion": "0.1.0", "packageUri": uri}
    return await gw.post(PACKAGES, json=body)


async def test_an_oci_package_uri_is_pulled_at_the_checked_addresses(
    tmp_path: Path, registry: Registry, charts_dir: Path
) -> None:
    with front_registry(registry) as seen:
        async with gateway(tmp_path, allow_loopback=True) as gw:
            uri = f"oci://registry.pinned.test:{seen.port}/charts/hello-world:0.1.0"
            response = await register(gw, uri)
            assert response.status_code == 201, response.text
            assert (await gw.get(f"{PACKAGES}/hello-world-0.1.0")).status_code == 200
    chart = (charts_dir / "hello-world-0.1.0.tgz").read_bytes()
    assert stored_archive(tmp_path, "hello-world-0.1.0.tgz").read_bytes() == chart
    # The token flow: anonymous manifest read (401), the realm, then with the token.
    manifest = "/v2/charts/hello-world/manifests/0.1.0"
    assert [(p, a) for p, a, _ in seen.front.requests[:2]] == [
        (manifest, None),
        (manifest, f"Bearer {TOKEN}"),
    ]
    assert len(seen.realm.requests) == 1
    blob = f"/v2/charts/hello-world/blobs/sha256:{hashlib.sha256(chart).hexdigest()}"
    assert seen.front.requests[2][:2] == (blob, f"Bearer {TOKEN}")
    # The redirect to the blob store is followed at its checked address, without the token.
    assert [(p, a) for p, a, _ in seen.blobs.requests] == [(blob, None)]
    # Every request was the gateway's own client (the Helm SDK's says Helm/…).
    assert (seen.front.agents() | seen.realm.agents() | seen.blobs.agents()) == {"python-httpx"}


async def test_a_name_rebinding_to_the_metadata_address_is_sent_nothing(
    tmp_path: Path, registry: Registry, test_names: Counter[str]
) -> None:
    with front_registry(registry) as seen:
        async with gateway(tmp_path, allow_loopback=True) as gw:
            uri = f"oci://registry.rebind.test:{seen.port}/charts/hello-world:0.1.0"
            response = await register(gw, uri)
            assert response.status_code == 422, response.text
            assert "169.254.169.254" in response.json()["detail"]
            assert (await gw.get(f"{PACKAGES}/hello-world-0.1.0")).status_code == 404
    assert test_names["registry.rebind.test"] >= 2
    assert seen.front.requests == seen.realm.requests == seen.blobs.requests == []


class _Repository(_Counting):
    """A chart repository directory (``index.yaml`` and archives) that counts its readers."""

    directory = ""

    def do_GET(self) -> None:
        self.record()
        path = Path(self.directory) / self.path.lstrip("/")
        if path.is_file():
            self.answer(200, path.read_bytes())
        else:
            self.answer(404)


@pytest.fixture
def chart_repository(tmp_path: Path, charts_dir: Path) -> Iterator[tuple[str, Seen, Path]]:
    directory = tmp_path / "deprepo"
    directory.mkdir()
    shutil.copy(charts_dir / "hello-world-0.1.0.tgz", directory)
    helm_python.repo_index_generate(directory)  # the index Helm itself writes
    with listening(_Repository, directory=str(directory)) as (seen, port):
        yield f"http://127.0.0.1:{port}", seen, directory


def umbrella(tmp_path: Path, repository: str, hostile: str) -> Path:
    """A chart needing hello-world 0.1.x from ``repository`` (not vendored) and vendoring two
    subcharts whose declared repositories are a hostile listener and a local path: ``helm
    dependency update`` would have fetched all three."""
    dependencies = [
        {"name": "hello-world", "version": "0.1.x", "repository": repository},
        {"name": "vend", "version": "1.0.0", "repository": hostile},
        {"name": "near", "version": "1.0.0", "repository": "file://../../../../etc"},
    ]
    files = chart_files("umbrella", "1.0.0", dependencies=dependencies)
    files.update(subchart_files("", "vend", "1.0.0"))
    files.update(subchart_files("", "near", "1.0.0"))
    return write_tgz(tmp_path / "umbrella-1.0.0.tgz", files, top="umbrella")


async def upload(gw: GatewayClient, archive: Path) -> httpx.Response:
    with archive.open("rb") as handle:
        return await gw.post(
            PACKAGES,
            data={"name": "umbrella", "artifactVersion": "1.0.0"},
            files={"chart": (archive.name, handle, "application/gzip")},
        )


async def test_dependencies_are_fetched_by_the_gateway_from_the_configured_repository_only(
    tmp_path: Path, chart_repository: tuple[str, Seen, Path]
) -> None:
    url, seen, _ = chart_repository
    with listening(_Repository, directory=str(tmp_path / "nothing")) as (hostile, port):
        archive = umbrella(tmp_path, url, f"http://127.0.0.1:{port}")
        async with gateway(tmp_path, allow_loopback=True, dependency_repositories=(url,)) as gw:
            response = await upload(gw, archive)
            assert response.status_code == 201, response.text
            assert "vendored" in response.headers["Warning"]
    assert seen.paths() == ["/index.yaml", "/hello-world-0.1.0.tgz"]
    assert seen.agents() == {"python-httpx"}
    assert hostile.requests == []  # a vendored subchart's repository is never asked
    with tarfile.open(stored_archive(tmp_path, "umbrella-1.0.0.tgz")) as tar:
        names = set(tar.getnames())
    assert {"umbrella/charts/hello-world-0.1.0.tgz", "umbrella/charts/vend/Chart.yaml"} <= names


async def test_a_dependency_repository_outside_the_allow_list_is_sent_nothing(
    tmp_path: Path, chart_repository: tuple[str, Seen, Path]
) -> None:
    url, seen, _ = chart_repository
    archive = umbrella(tmp_path, url, "https://charts.example.invalid")
    async with gateway(tmp_path, allow_loopback=False, dependency_repositories=(url,)) as gw:
        response = await upload(gw, archive)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert "loopback" in problem["detail"] and "fetch.allowedCidrs" in problem["detail"]
        assert problem["details"]["field"] == "dependencies"
        assert (await gw.get(f"{PACKAGES}/umbrella-1.0.0")).status_code == 404
    assert seen.requests == []
    assert not stored_archive(tmp_path, "umbrella-1.0.0.tgz").exists()


async def test_an_index_pointing_at_the_metadata_address_is_not_followed(
    tmp_path: Path, chart_repository: tuple[str, Seen, Path]
) -> None:
    url, seen, directory = chart_repository
    index = yaml.safe_load((directory / "index.yaml").read_text())
    index["entries"]["hello-world"][0]["urls"] = ["http://169.254.169.254/latest/chart.tgz"]
    (directory / "index.yaml").write_text(yaml.safe_dump(index))
    archive = umbrella(tmp_path, url, "https://charts.example.invalid")
    async with gateway(tmp_path, allow_loopback=True, dependency_repositories=(url,)) as gw:
        response = await upload(gw, archive)
        assert response.status_code == 422, response.text
        assert "169.254.169.254" in response.json()["detail"]
    assert seen.paths() == ["/index.yaml"]


async def test_an_oci_dependency_repository_is_pulled_by_the_gateway(
    tmp_path: Path, registry: Registry
) -> None:
    url = f"oci://{registry.host}/deps"
    archive = umbrella(tmp_path, url, "https://charts.example.invalid")
    async with gateway(tmp_path, allow_loopback=True, dependency_repositories=(url,)) as gw:
        response = await upload(gw, archive)
        assert response.status_code == 201, response.text
    with tarfile.open(stored_archive(tmp_path, "umbrella-1.0.0.tgz")) as tar:
        assert "umbrella/charts/hello-world-0.1.0.tgz" in tar.getnames()

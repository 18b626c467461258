"""A classic Helm HTTP repository (real Helm index, static server on loopback, read-only) and a
ChartMuseum-behaving server (its documented ``/api``)."""

from __future__ import annotations

import http.server
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import helm_python
import httpx
import pytest
from chartkit import build_chart
from chartmuseum import Museum, run_chartmuseum
from conftest import REAL_CHARTS, AdapterFactory, upload_of
from netweave.adapters import DeploymentSpec, OperationContext, PackageUpload
from netweave.errors import AlreadyExists, BackendError, InvalidInput, NotFound, Unsupported
from netweave.models import DeploymentStatus
from netweave.testing.k8s import KubernetesEmulator
from servers import serve_directory

# -- classic HTTP repository ------------------------------------------------------------------


@pytest.fixture
def http_repo(tmp_path: Path, charts_dir: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path / "httprepo"
    directory.mkdir()
    for name in ("hello-world-0.1.0.tgz", "velero-12.1.0.tgz"):
        shutil.copy(charts_dir / name, directory / name)
    helm_python.repo_index_generate(directory)  # the index Helm itself writes
    with serve_directory(directory) as url:
        yield url, directory


async def test_http_repository_lists_and_gets_from_its_index(
    http_repo: tuple[str, Path], adapter_factory: AdapterFactory
) -> None:
    url, _ = http_repo
    adapter = await adapter_factory({"storage": {"kind": "http", "url": url}})
    listed = {p.backend_ref: p for p in await adapter.list_packages()}
    assert set(listed) == {"hello-world:0.1.0", "velero:12.1.0"}
    velero = listed["velero:12.1.0"]
    assert velero.checksum == f"sha256:{REAL_CHARTS['velero-12.1.0.tgz']}"
    assert velero.package_uri == f"{url}/velero-12.1.0.tgz"
    assert velero.extensions["kubeVersion"] == ">=1.16.0-0"
    assert (await adapter.get_package("hello-world:0.1.0")).extensions["appVersion"] == "1.16.0"
    with pytest.raises(NotFound):
        await adapter.get_package("hello-world:9.9.9")


async def test_http_repository_is_read_only_but_registers_by_reference(
    http_repo: tuple[str, Path], adapter_factory: AdapterFactory, charts_dir: Path
) -> None:
    url, _ = http_repo
    adapter = await adapter_factory({"storage": {"kind": "http", "url": url}})
    with pytest.raises(Unsupported) as caught:
        await adapter.upload_package(upload_of(charts_dir / "nginx-21.1.23.tgz"))
    assert caught.value.status == 501
    with pytest.raises(Unsupported):
        await adapter.delete_package("velero:12.1.0")

    registered = await adapter.upload_package(
        PackageUpload(name="velero", version="12.1.0", package_uri="velero:12.1.0")
    )
    assert registered.backend_ref == "velero:12.1.0"
    with pytest.raises(NotFound):
        await adapter.upload_package(
            PackageUpload(name="absent", version="1.0.0", package_uri="absent:1.0.0")
        )


async def test_install_from_http_repository_and_digest_check(
    http_repo: tuple[str, Path],
    adapter_factory: AdapterFactory,
    k8s_kubeconfig: Path,
    charts_dir: Path,
) -> None:
    url, directory = http_repo
    adapter = await adapter_factory(
        {"storage": {"kind": "http", "url": url}, "cluster": {"kubeconfig": str(k8s_kubeconfig)}}
    )
    package = await adapter.get_package("hello-world:0.1.0")
    created = await adapter.create_deployment(
        DeploymentSpec(deployment_id="d", name="hw", namespace="web", package=package),
        OperationContext("op", "key"),
    )
    assert created.status is DeploymentStatus.DEPLOYED

    # A tampered archive no longer matches the index digest: refused, not installed.
    shutil.copy(charts_dir / "nginx-21.1.23.tgz", directory / "velero-12.1.0.tgz")
    velero = await adapter.get_package("velero:12.1.0")
    with pytest.raises(BackendError) as caught:
        await adapter.create_deployment(
            DeploymentSpec(deployment_id="d2", name="vel", namespace="web", package=velero),
            OperationContext("op2", "key2"),
        )
    assert "digest" in caught.value.message


async def test_registration_by_url_downloads_validates_and_stores(
    http_repo: tuple[str, Path], adapter_factory: AdapterFactory, tmp_path: Path
) -> None:
    url, directory = http_repo
    # By default a client-given URL may not point into the gateway's own network (SSRF).
    guarded = await adapter_factory(name="guarded")
    with pytest.raises(InvalidInput) as caught:
        await guarded.upload_package(
            PackageUpload(name="velero", version="12.1.0", package_uri=f"{url}/velero-12.1.0.tgz")
        )
    assert "allowPrivatePackageUris" in caught.value.message
    for metadata_url in ("http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x.tgz"):
        with pytest.raises(InvalidInput):
            await guarded.upload_package(
                PackageUpload(name="m", version="1.0.0", package_uri=metadata_url)
            )

    adapter = await adapter_factory(
        {
            "storage": {"kind": "local", "repositoryDir": str(tmp_path / "repo")},
            "allowPrivatePackageUris": True,
        }
    )
    # Link-local stays refused even when private addresses are allowed.
    with pytest.raises(InvalidInput):
        await adapter.upload_package(
            PackageUpload(name="m", version="1.0.0", package_uri="http://169.254.169.254/x.tgz")
        )
    info = await adapter.upload_package(
        PackageUpload(name="velero", version="12.1.0", package_uri=f"{url}/velero-12.1.0.tgz")
    )
    assert info.checksum == f"sha256:{REAL_CHARTS['velero-12.1.0.tgz']}"
    assert (tmp_path / "repo" / "velero-12.1.0.tgz").is_file()

    (directory / "junk.tgz").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(InvalidInput):
        await adapter.upload_package(
            PackageUpload(name="junk", version="1.0.0", package_uri=f"{url}/junk.tgz")
        )
    with pytest.raises(InvalidInput):
        await adapter.upload_package(
            PackageUpload(name="gone", version="1.0.0", package_uri=f"{url}/gone.tgz")
        )


# -- ChartMuseum --------------------------------------------------------------------------------


@pytest.fixture
def museum() -> Iterator[tuple[Museum, str]]:
    server = Museum()
    with run_chartmuseum(server) as url:
        yield server, url


async def test_chartmuseum_upload_list_get_delete(
    museum: tuple[Museum, str], adapter_factory: AdapterFactory, charts_dir: Path
) -> None:
    server, url = museum
    adapter = await adapter_factory({"storage": {"kind": "chartmuseum", "url": url}})
    info = await adapter.upload_package(upload_of(charts_dir / "traefik-41.3.0.tgz"))
    assert ("POST", "/api/charts") in server.requests
    assert info.checksum == f"sha256:{REAL_CHARTS['traefik-41.3.0.tgz']}"
    assert info.package_uri == f"{url}/charts/traefik-41.3.0.tgz"
    assert info.extensions["kubeVersion"] == ">=1.25.0-0"

    with pytest.raises(AlreadyExists):
        await adapter.upload_package(upload_of(charts_dir / "traefik-41.3.0.tgz"))

    # Added to the museum directly (not through netweave): visible.
    data = (charts_dir / "hello-world-0.1.0.tgz").read_bytes()
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{url}/api/charts", content=data)).status_code == 201
    assert {p.backend_ref for p in await adapter.list_packages()} == {
        "traefik:41.3.0",
        "hello-world:0.1.0",
    }
    await adapter.delete_package("traefik:41.3.0")
    assert ("DELETE", "/api/charts/traefik/41.3.0") in server.requests
    with pytest.raises(NotFound):
        await adapter.get_package("traefik:41.3.0")
    with pytest.raises(NotFound):
        await adapter.delete_package("traefik:41.3.0")

    # The museum's repository face works for the real Helm SDK too.
    index = helm_python.repo_index(url)
    assert list(index["entries"]) == ["hello-world"]

    # The chart list is parsed once per change, not per read.
    from netweave_helm.storage.http import ChartMuseumStore

    store = adapter.store
    assert isinstance(store, ChartMuseumStore)
    assert {p.backend_ref for p in await adapter.list_packages()} == {"hello-world:0.1.0"}
    parses = store._index.parses
    assert {p.backend_ref for p in await adapter.list_packages()} == {"hello-world:0.1.0"}
    assert store._index.parses == parses


async def test_chartmuseum_with_basic_auth_and_tenant(
    adapter_factory: AdapterFactory, tmp_path: Path, k8s_kubeconfig: Path
) -> None:
    server = Museum(tenant="org/team", auth=("museum", "pw"))
    with run_chartmuseum(server) as url:
        adapter = await adapter_factory(
            {
                "storage": {
                    "kind": "chartmuseum",
                    "url": url,
                    "tenant": "org/team",
                    "username": "museum",
                    "password": "pw",
                },
                "cluster": {"kubeconfig": str(k8s_kubeconfig)},
            }
        )
        info = await adapter.upload_package(upload_of(build_chart(tmp_path / "s", "tnt", "0.1.0")))
        assert ("POST", "/api/org/team/charts") in server.requests
        assert info.package_uri == f"{url}/org/team/charts/tnt-0.1.0.tgz"
        created = await adapter.create_deployment(
            DeploymentSpec(deployment_id="d", name="tnt", namespace="cm", package=info),
            OperationContext("op", "key"),
        )
        assert created.status is DeploymentStatus.DEPLOYED

        anonymous = await adapter_factory(
            {"storage": {"kind": "chartmuseum", "url": url, "tenant": "org/team"}}, name="anon"
        )
        with pytest.raises(BackendError):
            await anonymous.list_packages()


async def test_dependency_from_a_configured_repository_is_vendored_at_upload(
    http_repo: tuple[str, Path],
    adapter_factory: AdapterFactory,
    tmp_path: Path,
    k8s_kubeconfig: Path,
    k8s_emulator: KubernetesEmulator,
) -> None:
    url, _ = http_repo
    archive = build_chart(
        tmp_path / "u",
        "umbrella",
        "1.0.0",
        dependencies=[{"name": "hello-world", "version": "0.1.x", "repository": url}],
    )
    unconfigured = await adapter_factory(name="plain")
    with pytest.raises(InvalidInput) as caught:
        await unconfigured.upload_package(upload_of(archive))
    assert "hello-world" in caught.value.message

    adapter = await adapter_factory(
        {
            "storage": {"kind": "local", "repositoryDir": str(tmp_path / "vendoring")},
            "dependencyRepositories": [{"url": url}],
            "cluster": {"kubeconfig": str(k8s_kubeconfig)},
            # The repository is on loopback: the fetch policy must be told it may go there.
            "fetch": {"allowedCidrs": ["127.0.0.0/8"]},
        },
        name="vendoring",
    )
    info = await adapter.upload_package(upload_of(archive))
    assert any("vendored" in w for w in info.warnings)
    with tarfile.open(tmp_path / "vendoring" / "umbrella-1.0.0.tgz", "r:gz") as tar:
        names = tar.getnames()
    # The gateway adds the dependency's archive (the highest 0.1.x) under charts/.
    assert "umbrella/charts/hello-world-0.1.0.tgz" in names

    created = await adapter.create_deployment(
        DeploymentSpec(deployment_id="d", name="umb", namespace="deps", package=info),
        OperationContext("op", "key"),
    )
    assert created.status is DeploymentStatus.DEPLOYED
    assert k8s_emulator.get("apps/v1", "Deployment", "umb-hello-world", "deps") is not None


class _Redirect(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        location = self.target if self.path == "/go" else "http://169.254.169.254/latest"
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


async def test_registration_redirects_are_checked_too(
    http_repo: tuple[str, Path], adapter_factory: AdapterFactory
) -> None:
    url, _ = http_repo
    handler = type("Handler", (_Redirect,), {"target": f"{url}/hello-world-0.1.0.tgz"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        adapter = await adapter_factory({"allowPrivatePackageUris": True})
        info = await adapter.upload_package(
            PackageUpload(name="hello-world", version="0.1.0", package_uri=f"{base}/go")
        )
        assert info.backend_ref == "hello-world:0.1.0"
        with pytest.raises(InvalidInput) as caught:
            await adapter.upload_package(
                PackageUpload(name="x", version="1.0.0", package_uri=f"{base}/metadata")
            )
        assert "link-local" in caught.value.message
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_http_index_is_read_conditionally_and_parsed_once_per_change(
    http_repo: tuple[str, Path], adapter_factory: AdapterFactory, charts_dir: Path
) -> None:
    import os

    from netweave_helm.storage.http import HttpChartStore

    url, directory = http_repo
    adapter = await adapter_factory({"storage": {"kind": "http", "url": url}})
    store = adapter.store
    assert isinstance(store, HttpChartStore)
    first = await store.listing_since(None)
    assert first.complete and len(first.entries) == 2
    # The static server answers If-Modified-Since with 304: nothing parsed, nothing new.
    again = await store.listing_since(first.token)
    assert not again.complete and again.entries == []
    assert len(await store.list_charts()) == 2
    assert store._index.parses == 1

    shutil.copy(charts_dir / "nginx-21.1.23.tgz", directory / "nginx-21.1.23.tgz")
    helm_python.repo_index_generate(directory)
    later = (directory / "index.yaml").stat().st_mtime + 5  # past If-Modified-Since's second
    os.utime(directory / "index.yaml", (later, later))
    changed = await store.listing_since(again.token)
    assert changed.complete and len(changed.entries) == 3
    assert store._index.parses == 2

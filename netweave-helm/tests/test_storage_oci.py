"""Charts in a real OCI registry (Debian docker-registry on loopback, deletes enabled)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest
from chartkit import build_chart
from conftest import REAL_CHARTS, AdapterFactory, upload_of
from netweave.adapters import DeploymentSpec, OperationContext, PackageUpload
from netweave.errors import AlreadyExists, BackendError, InvalidInput, NotFound
from netweave.models import DeploymentStatus
from netweave_helm.adapter import HelmAdapter
from registry import Registry, run_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("auth-registry"), auth=("netweave", "s3cret")) as r:
        yield r


_paths = iter(range(1, 10_000))


@pytest.fixture
async def oci_adapter(adapter_factory: AdapterFactory, registry: Registry) -> HelmAdapter:
    # Every test gets its own repository path in the shared registry.
    path = f"charts{next(_paths)}"
    return await adapter_factory(
        {"storage": {"kind": "oci", "url": f"oci://{registry.host}/{path}"}}
    )


async def test_push_list_get_resolve_delete(
    oci_adapter: HelmAdapter, charts_dir: Path, registry: Registry
) -> None:
    info = await oci_adapter.upload_package(upload_of(charts_dir / "nginx-21.1.23.tgz"))
    assert info.backend_ref == "nginx:21.1.23"
    # The chart layer digest is the archive's sha256: the registry holds it byte for byte.
    assert info.checksum == f"sha256:{REAL_CHARTS['nginx-21.1.23.tgz']}"
    assert info.package_uri == f"{oci_adapter.store.location}/nginx:21.1.23"
    assert info.extensions["dependencies"][0]["name"] == "common"
    assert info.extensions["storage"] == "oci"

    listed = await oci_adapter.list_packages()
    assert [p.backend_ref for p in listed] == ["nginx:21.1.23"]
    got = await oci_adapter.get_package("nginx:21.1.23")
    assert got.extensions["keywords"] == info.extensions["keywords"]

    # The real Helm SDK resolves and pulls what netweave pushed.
    with helm_python.RegistryClient(plain_http=True) as client:
        assert client.tags(f"{oci_adapter.store.location}/nginx") == ["21.1.23"]
        resolved = client.resolve(f"{oci_adapter.store.location}/nginx:21.1.23")
        assert resolved["digest"].startswith("sha256:")

    with pytest.raises(AlreadyExists):
        await oci_adapter.upload_package(upload_of(charts_dir / "nginx-21.1.23.tgz"))

    await oci_adapter.delete_package("nginx:21.1.23")
    assert await oci_adapter.list_packages() == []
    with pytest.raises(NotFound):
        await oci_adapter.get_package("nginx:21.1.23")
    with pytest.raises(NotFound):
        await oci_adapter.delete_package("nginx:21.1.23")


async def test_chart_pushed_outside_netweave_shows_up(
    oci_adapter: HelmAdapter, charts_dir: Path
) -> None:
    helm_python.push(
        str(charts_dir / "hello-world-0.1.0.tgz"), oci_adapter.store.location, plain_http=True
    )
    listed = {p.backend_ref: p for p in await oci_adapter.list_packages()}
    assert set(listed) == {"hello-world:0.1.0"}
    assert listed["hello-world:0.1.0"].extensions["appVersion"] == "1.16.0"


async def test_build_metadata_versions_use_underscore_tags(
    oci_adapter: HelmAdapter, tmp_path: Path
) -> None:
    archive = build_chart(tmp_path / "s", "plus", "1.0.0+build.7")
    info = await oci_adapter.upload_package(upload_of(archive, "plus", "1.0.0+build.7"))
    assert info.package_uri is not None and info.package_uri.endswith("/plus:1.0.0_build.7")
    assert [p.version for p in await oci_adapter.list_packages()] == ["1.0.0+build.7"]
    await oci_adapter.delete_package("plus:1.0.0+build.7")
    assert await oci_adapter.list_packages() == []


async def test_install_from_the_registry(
    adapter_factory: AdapterFactory, registry: Registry, charts_dir: Path, k8s_kubeconfig: Path
) -> None:
    adapter = await adapter_factory(
        {
            "storage": {"kind": "oci", "url": f"oci://{registry.host}/deploy"},
            "cluster": {"kubeconfig": str(k8s_kubeconfig)},
        }
    )
    package = await adapter.upload_package(upload_of(charts_dir / "hello-world-0.1.0.tgz"))
    created = await adapter.create_deployment(
        DeploymentSpec(deployment_id="d", name="from-oci", namespace="oci", package=package),
        OperationContext("op", "key"),
    )
    assert created.status is DeploymentStatus.DEPLOYED
    assert created.package_version == "0.1.0"


async def test_htpasswd_registry_with_credentials(
    adapter_factory: AdapterFactory, auth_registry: Registry, tmp_path: Path
) -> None:
    adapter = await adapter_factory(
        {
            "storage": {
                "kind": "oci",
                "url": f"oci://{auth_registry.host}/private",
                "username": auth_registry.username,
                "password": auth_registry.password,
            }
        }
    )
    archive = build_chart(tmp_path / "s", "secret-chart", "2.0.0")
    info = await adapter.upload_package(upload_of(archive))
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    assert info.checksum == digest
    assert [p.backend_ref for p in await adapter.list_packages()] == ["secret-chart:2.0.0"]
    await adapter.delete_package(info.backend_ref)
    assert await adapter.list_packages() == []


@pytest.mark.parametrize("password", ["wrong", None])
async def test_htpasswd_registry_refuses_bad_or_missing_credentials(
    password: str | None, adapter_factory: AdapterFactory, auth_registry: Registry, tmp_path: Path
) -> None:
    storage: dict[str, object] = {"kind": "oci", "url": f"oci://{auth_registry.host}/private"}
    if password is not None:
        storage.update(username="netweave", password=password)
    adapter = await adapter_factory({"storage": storage})
    with pytest.raises(BackendError) as caught:
        await adapter.list_packages()
    assert caught.value.status == 502
    assert "s3cret" not in caught.value.message
    with pytest.raises(BackendError):
        await adapter.upload_package(upload_of(build_chart(tmp_path / "s", "nope", "1.0.0")))
    assert not (await adapter.health()).healthy


async def test_registration_by_oci_reference_pulls_into_the_local_repository(
    adapter_factory: AdapterFactory, registry: Registry, charts_dir: Path, tmp_path: Path
) -> None:
    remote = f"oci://{registry.host}/elsewhere"
    helm_python.push(str(charts_dir / "velero-12.1.0.tgz"), remote, plain_http=True)
    adapter = await adapter_factory({"allowPrivatePackageUris": True})  # local storage
    info = await adapter.upload_package(
        PackageUpload(name="velero", version="12.1.0", package_uri=f"{remote}/velero:12.1.0")
    )
    assert info.checksum == f"sha256:{REAL_CHARTS['velero-12.1.0.tgz']}"
    assert (tmp_path / "repo" / "velero-12.1.0.tgz").is_file()
    with pytest.raises(InvalidInput) as caught:
        await adapter.upload_package(
            PackageUpload(name="velero", version="9.9.9", package_uri=f"{remote}/velero:9.9.9")
        )
    assert "has no 9.9.9 (HTTP 404)" in caught.value.message

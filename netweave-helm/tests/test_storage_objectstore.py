"""Charts in object storage (``s3``, ``azure``, ``gcs``) against servers on loopback: moto's S3
server and Azurite's Blob service (real servers); for GCS, the strict XML-API stand-in of
``gcsfake`` for everything that writes and for wrong credentials (no registry GCS emulator
accepts the XML-API writes obstore sends or checks credentials; see ``fakegcs``) and the real
fake-gcs-server (``fakegcs``) for the read side — one of each per session, a bucket (container)
per test.

What the store holds is read back directly (obstore, the adapter's own library, with its own
client): the archives and ``index.yaml`` in the helm-s3 / helm-gcs layout.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import ssl
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import obstore
import pytest
import yaml
from chartkit import build_chart, chart_files, write_tgz
from conftest import REAL_CHARTS, AdapterFactory, upload_of
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakegcs import FakeGcsServer, run_fake_gcs_server
from gcsfake import GcsState, run_gcs
from netweave.adapters import DeploymentSpec, OperationContext
from netweave.errors import AlreadyExists, BackendError, BackendUnavailable
from netweave.models import DeploymentStatus
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.tls import make_pki
from netweave_helm.config import HelmConfig
from netweave_helm.storage import objectstore
from netweave_helm.storage.objectstore import ObjectChartStore
from objectstores import AzureServer, Relay, S3Server, run_azurite, run_moto
from obstore.store import AzureStore, GCSStore, S3Store

PACKAGES = "/o2dms/v1/nfDeploymentDescriptors"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with run_moto() as server:
        yield server


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    with run_azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@dataclass
class Repo:
    """One repository in a fresh bucket (container): its ``storage`` config and a direct
    client on the same bucket for reading back what the store holds."""

    kind: str
    storage: dict[str, Any]
    direct: Any
    prefix: str = "charts"

    def object_keys(self) -> list[str]:
        return sorted(o["path"] for o in obstore.list(self.direct).collect())

    def index(self) -> dict[str, Any]:
        raw = bytes(obstore.get(self.direct, f"{self.prefix}/index.yaml").bytes())
        loaded = yaml.safe_load(raw)
        assert isinstance(loaded, dict)
        return loaded

    def versions(self) -> set[str]:
        try:
            entries = self.index()["entries"]
        except FileNotFoundError:
            return set()
        return {f"{name}:{item['version']}" for name, items in entries.items() for item in items}


def s3_repo(server: S3Server, endpoint: str | None = None) -> Repo:
    bucket = f"nw-{os.getpid()}-{next(_names)}"
    server.create_bucket(bucket)
    storage = {
        "kind": "s3",
        "repositoryUrl": f"s3://{bucket}/charts",
        "region": "us-east-1",
        "endpoint": endpoint or server.endpoint,
        "accessKeyId": server.access_key_id,
        "secretAccessKey": server.secret_access_key,
    }
    direct = S3Store(
        bucket,
        endpoint=server.endpoint,
        region="us-east-1",
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    return Repo("s3", storage, direct)


def azure_repo(server: AzureServer, endpoint: str | None = None) -> Repo:
    container = f"nw-{os.getpid()}-{next(_names)}"
    server.create_container(container)
    storage = {
        "kind": "azure",
        "repositoryUrl": f"az://{container}/charts",
        "endpoint": endpoint or server.endpoint,
        "accountName": server.account,
        "accountKey": server.key,
    }
    direct = AzureStore(
        container,
        account_name=server.account,
        account_key=server.key,
        endpoint=server.endpoint,
        client_options={"allow_http": True},
    )
    return Repo("azure", storage, direct)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[tuple[str, GcsState]]:
    with run_gcs() as server:
        yield server


def gcs_repo(server: tuple[str, GcsState]) -> Repo:
    endpoint, state = server
    bucket = f"nw-{os.getpid()}-{next(_names)}"
    state.buckets[bucket] = {}
    # A key that skips the token exchange (obstore's documented switch for emulators).
    fields = ("client_email", "private_key", "private_key_id")
    key = json.dumps({"disable_oauth": True, "gcs_base_url": endpoint} | dict.fromkeys(fields, ""))
    storage = {
        "kind": "gcs",
        "repositoryUrl": f"gs://{bucket}/charts",
        "endpoint": endpoint,
        "serviceAccountKey": key,
    }
    direct = GCSStore(
        bucket, service_account_key=key, base_url=endpoint, client_options={"allow_http": True}
    )
    return Repo("gcs", storage, direct)


@pytest.fixture(params=["s3", "azure", "gcs"])
def repo(request: pytest.FixtureRequest) -> Repo:
    if request.param == "s3":
        return s3_repo(request.getfixturevalue("s3_server"))
    if request.param == "gcs":
        return gcs_repo(request.getfixturevalue("gcs_server"))
    return azure_repo(request.getfixturevalue("azure_server"))


@asynccontextmanager
async def gateway(
    tmp_path: Path, storage: dict[str, Any], **config: Any
) -> AsyncIterator[GatewayClient]:
    config["storage"] = storage
    settings = gateway_settings(
        tmp_path / "data",
        dms=[{"name": "helm-obj", "type": "helm", "default": True, "config": config}],
    )
    async with running_gateway(tmp_path, settings=settings) as client:
        yield client


async def post_chart(gw: GatewayClient, archive: Path, name: str, version: str) -> httpx.Response:
    with archive.open("rb") as handle:
        return await gw.post(
            PACKAGES,
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
        )


def store_of(config: dict[str, Any]) -> ObjectChartStore:
    settings = HelmConfig.model_validate({"storage": config})
    store = ObjectChartStore(
        settings.storage,  # type: ignore[arg-type]
        timeout=10.0,
        max_bytes=settings.limits.max_uncompressed_bytes,
    )
    return store


# -- the API, outcome read back from the store ---------------------------------------------


async def test_upload_list_get_delete_through_the_api(
    repo: Repo, tmp_path: Path, charts_dir: Path
) -> None:
    async with gateway(tmp_path, repo.storage) as gw:
        response = await post_chart(gw, charts_dir / "nginx-21.1.23.tgz", "nginx", "21.1.23")
        assert response.status_code == 201, response.text
        body = response.json()
        package_id = body["packageId"]
        assert body["extensions"]["storage"] == repo.kind
        bucket_url = repo.storage["repositoryUrl"]
        assert body["extensions"]["repository"] == bucket_url

        # The bucket holds the archive byte for byte and a helm-s3 style index entry.
        keys = repo.object_keys()
        assert "charts/nginx-21.1.23.tgz" in keys and "charts/index.yaml" in keys
        assert not [k for k in keys if "/.netweave/claims/" in k]  # released
        stored = bytes(obstore.get(repo.direct, "charts/nginx-21.1.23.tgz").bytes())
        assert hashlib.sha256(stored).hexdigest() == REAL_CHARTS["nginx-21.1.23.tgz"]
        (entry,) = repo.index()["entries"]["nginx"]
        assert entry["digest"] == REAL_CHARTS["nginx-21.1.23.tgz"]
        assert entry["urls"] == [f"{bucket_url}/nginx-21.1.23.tgz"]
        assert entry["dependencies"][0]["name"] == "common"

        listed = (await gw.get(PACKAGES)).json()
        assert [p["name"] for p in listed["items"]] == ["nginx"]
        got = await gw.get(f"{PACKAGES}/{package_id}")
        assert got.status_code == 200
        assert got.json()["checksum"] == f"sha256:{REAL_CHARTS['nginx-21.1.23.tgz']}"

        # The same version again: 409, the stored archive untouched.
        again = await post_chart(gw, charts_dir / "nginx-21.1.23.tgz", "nginx", "21.1.23")
        assert again.status_code == 409, again.text
        assert again.headers["content-type"].startswith("application/problem+json")
        # Not a chart: 400, nothing added to the bucket.
        junk = tmp_path / "junk-1.0.0.tgz"
        junk.write_bytes(b"not a gzip archive")
        bad = await post_chart(gw, junk, "junk", "1.0.0")
        assert bad.status_code == 400, bad.text
        assert repo.object_keys() == keys
        assert repo.versions() == {"nginx:21.1.23"}

        deleted = await gw.delete(f"{PACKAGES}/{package_id}")
        assert deleted.status_code in (200, 202, 204), deleted.text
        if deleted.status_code == 202:
            await gw.wait(deleted)
        assert (await gw.get(f"{PACKAGES}/{package_id}")).status_code == 404
        assert "charts/nginx-21.1.23.tgz" not in repo.object_keys()
        assert repo.versions() == set()
        assert (await gw.delete(f"{PACKAGES}/{package_id}")).status_code == 404


async def test_a_repository_written_by_the_helm_plugins_is_read_and_deployable(
    repo: Repo,
    adapter_factory: AdapterFactory,
    charts_dir: Path,
    k8s_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    """An index.yaml in YAML with helm-s3's three URL forms (relative, absolute in the bucket,
    ``--publish``'s http(s) URL); the charts are listed, fetched (digest checked), deployed."""
    hello = (charts_dir / "hello-world-0.1.0.tgz").read_bytes()
    url = repo.storage["repositoryUrl"]
    obstore.put(repo.direct, "charts/hello-world-0.1.0.tgz", hello)
    obstore.put(repo.direct, "charts/sub/hello-world-0.1.0.tgz", hello)
    digest = REAL_CHARTS["hello-world-0.1.0.tgz"]
    index = textwrap.dedent(
        f"""\
        apiVersion: v1
        entries:
          hello-world:
          - apiVersion: v2
            name: hello-world
            version: 0.1.0
            appVersion: 1.16.0
            digest: {digest}
            urls: [hello-world-0.1.0.tgz]
          other:
          - apiVersion: v2
            name: other
            version: 2.0.0
            digest: {digest}
            urls: ["{url}/sub/hello-world-0.1.0.tgz"]
          published:
          - apiVersion: v2
            name: published
            version: 3.0.0
            digest: {digest}
            urls: ["https://charts.example.invalid/hello-world-0.1.0.tgz"]
        generated: "2024-01-01T00:00:00Z"
        """
    )
    obstore.put(repo.direct, "charts/index.yaml", index.encode())
    adapter = await adapter_factory(
        {"storage": repo.storage, "cluster": {"kubeconfig": str(k8s_kubeconfig)}}
    )
    listed = {p.backend_ref: p for p in await adapter.list_packages()}
    assert set(listed) == {"hello-world:0.1.0", "other:2.0.0", "published:3.0.0"}
    # Each form's archive is the bucket's object, fetched and checked against the digest.
    for ref in listed:
        name, version = ref.split(":")
        fetched = await adapter.store.fetch(name, version, tmp_path / ref)
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == digest
    assert listed["hello-world:0.1.0"].extensions["appVersion"] == "1.16.0"
    created = await adapter.create_deployment(
        DeploymentSpec(
            deployment_id="d-plugin",
            name=f"plugin-{repo.kind}",
            namespace=f"obj-{repo.kind}",
            package=listed["hello-world:0.1.0"],
        ),
        OperationContext("op-plugin", f"key-plugin-{repo.kind}"),
    )
    assert created.status is DeploymentStatus.DEPLOYED
    # Netweave's own upload keeps the foreign entries (a conditional update of that index).
    await adapter.upload_package(upload_of(build_chart(tmp_path / "mine", "mine", "1.0.0")))
    assert repo.versions() == {
        "hello-world:0.1.0",
        "other:2.0.0",
        "published:3.0.0",
        "mine:1.0.0",
    }


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_deployment_from_an_s3_stored_chart_through_the_api(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    """The Helm SDK gets the chart through netweave (downloaded from the bucket, digest
    checked); the package in use cannot be deleted (409) and stays in the bucket. Azure Blob
    (Azurite) the same way."""
    server = request.getfixturevalue(f"{kind}_server")
    repo = s3_repo(server) if isinstance(server, S3Server) else azure_repo(server)
    cluster = {"kubeconfig": str(k8s_kubeconfig)}
    async with gateway(tmp_path, repo.storage, cluster=cluster) as gw:
        uploaded = await post_chart(
            gw, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0"
        )
        assert uploaded.status_code == 201, uploaded.text
        package = uploaded.json()
        assert package["packageUri"] == f"{repo.storage['repositoryUrl']}/hello-world-0.1.0.tgz"
        body = {"name": "hw", "namespace": kind, "packageId": package["packageId"]}
        created = await gw.post("/o2dms/v1/nfDeployments", json=body)
        assert created.status_code == 201, created.text
        operation = await gw.wait(created, wait_seconds=60)
        assert operation["state"] == "COMPLETED", operation
        deployment = (await gw.get(created.headers["Location"])).json()
        assert deployment["status"] == "DEPLOYED", deployment
        assert k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", kind) is not None

        in_use = await gw.delete(f"{PACKAGES}/{package['packageId']}")
        assert in_use.status_code == 409, in_use.text
        assert repo.versions() == {"hello-world:0.1.0"}
        assert "charts/hello-world-0.1.0.tgz" in repo.object_keys()


# -- two replicas, one index ---------------------------------------------------------------


async def test_two_stores_updating_one_index_lose_no_entry(
    repo: Repo, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two store instances (as two gateways have) put 12 charts each at once: every entry is
    in the index afterwards, each archive where its entry says."""
    first, second = store_of(repo.storage), store_of(repo.storage)
    archive = build_chart(tmp_path / "c", "c", "1.0.0")
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()

    async def put(store: ObjectChartStore, name: str) -> None:
        metadata = {"apiVersion": "v2", "name": name, "version": "1.0.0"}
        await store.put(archive, name, "1.0.0", metadata, digest)

    names = [f"chart{i}" for i in range(24)]
    await asyncio.gather(*(put(first if i % 2 else second, n) for i, n in enumerate(names)))
    assert repo.versions() == {f"{n}:1.0.0" for n in names}
    assert {e.name for e in await first.list_charts()} == set(names)
    assert {e.name for e in await second.list_charts()} == set(names)
    # Deletes race as well: half of them from each side, the rest stays.
    await asyncio.gather(
        *(
            (first if i % 2 else second).delete(n, "1.0.0")
            for i, n in enumerate(names)
            if i % 3 == 0
        )
    )
    kept = {f"{n}:1.0.0" for i, n in enumerate(names) if i % 3}
    assert repo.versions() == kept
    assert {k for k in repo.object_keys() if k.endswith(".tgz")} == {
        f"charts/{v.replace(':', '-')}.tgz" for v in kept
    }
    # The same version from both at once: one stored, the other told it exists.
    results = await asyncio.gather(
        put(first, "twice"), put(second, "twice"), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyExists", "NoneType"]
    assert "twice:1.0.0" in repo.versions()
    assert not [k for k in repo.object_keys() if "/.netweave/claims/" in k]
    if repo.kind == "gcs":
        # Every index write was conditional on a generation (0: create) — none unconditional.
        state: GcsState = request.getfixturevalue("gcs_server")[1]
        index = f"{repo.storage['repositoryUrl'].removeprefix('gs://')}/index.yaml"
        bucket_writes = [m for k, m in state.preconditions if k == index]
        assert bucket_writes and all(m is not None for m in bucket_writes)
        assert any(m not in (None, "0") for m in bucket_writes)


async def test_an_index_write_whose_answer_was_lost_is_not_a_409(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conditional write of index.yaml lands, but its answer is lost and the client's
    own retry is told 412 (seen under load on the real S3 server): the upload read the index
    again, found its own entry and answered 409 for a chart it had just stored."""
    store = store_of(repo.storage)
    archive = build_chart(tmp_path / "c", "lost", "1.0.0")
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    real_put = objectstore.obstore.put_async
    lost: list[str] = []

    async def put_answer_lost(target: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        written = await real_put(target, key, *args, **kwargs)
        if key.endswith("index.yaml") and not lost:
            lost.append(key)
            raise objectstore.PreconditionError("the retried write found the ETag changed")
        return written

    monkeypatch.setattr(objectstore.obstore, "put_async", put_answer_lost)
    metadata = {"apiVersion": "v2", "name": "lost", "version": "1.0.0"}
    entry = await store.put(archive, "lost", "1.0.0", metadata, digest)
    assert lost, "the index write was not intercepted"
    assert entry.name == "lost"
    assert repo.versions() == {"lost:1.0.0"}
    assert "charts/lost-1.0.0.tgz" in repo.object_keys()
    # Still one entry, and a real second upload of the version is still refused.
    with pytest.raises(AlreadyExists):
        await store_of(repo.storage).put(archive, "lost", "1.0.0", metadata, digest)


async def test_two_gateways_uploading_at_once_lose_no_entry(
    s3_server: S3Server, tmp_path: Path
) -> None:
    repo = s3_repo(s3_server)
    archives = [build_chart(tmp_path / f"a{i}", f"app{i}", "1.0.0") for i in range(6)]
    async with (
        gateway(tmp_path / "one", repo.storage) as one,
        gateway(tmp_path / "two", repo.storage) as two,
    ):
        responses = await asyncio.gather(
            *(
                post_chart(one if i % 2 else two, a, f"app{i}", "1.0.0")
                for i, a in enumerate(archives)
            )
        )
        assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert repo.versions() == {f"app{i}:1.0.0" for i in range(6)}


async def test_a_claim_held_elsewhere_is_a_409_until_its_holder_is_presumed_dead(
    repo: Repo, tmp_path: Path
) -> None:
    """Another replica's claim on the version: 409 and nothing written; the same claim older
    than claimTtl (its holder died mid-upload): taken over, the upload lands."""
    store = store_of({**repo.storage, "claimTtl": 60})
    archive = build_chart(tmp_path / "c", "held", "1.0.0")
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    metadata = {"apiVersion": "v2", "name": "held", "version": "1.0.0"}
    claim = "charts/.netweave/claims/held-1.0.0.claim"
    obstore.put(repo.direct, claim, json.dumps({"holder": "other", "at": time.time()}).encode())
    with pytest.raises(AlreadyExists, match="being stored or deleted by another request"):
        await store.put(archive, "held", "1.0.0", metadata, digest)
    assert repo.versions() == set()
    assert "charts/held-1.0.0.tgz" not in repo.object_keys()
    stale = {"holder": "other", "at": time.time() - 61}
    obstore.put(repo.direct, claim, json.dumps(stale).encode())
    entry = await store.put(archive, "held", "1.0.0", metadata, digest)
    assert entry.digest == digest
    assert repo.versions() == {"held:1.0.0"}
    assert claim not in repo.object_keys()


# -- failures ------------------------------------------------------------------------------


def big_chart(directory: Path, name: str, megabytes: int) -> Path:
    """A chart of incompressible files (4 MB each, under Helm's 5 MiB per file)."""
    files = chart_files(name, "1.0.0")
    for i in range(megabytes // 4):
        files[f"files/blob{i}.bin"] = os.urandom(4_000_000)
    return write_tgz(directory / f"{name}-1.0.0.tgz", files, top=name)


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_store_unreachable_mid_upload_answers_503_and_stores_nothing(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: S3Server | AzureServer = request.getfixturevalue(f"{kind}_server")
    address = server.endpoint.removeprefix("http://").split("/", 1)[0]
    relay = Relay(int(address.rsplit(":", 1)[1]))
    relay.start()
    try:
        if isinstance(server, S3Server):
            repo = s3_repo(server, endpoint=relay.endpoint)
        else:  # Azurite's endpoint names the account after the address
            repo = azure_repo(server, endpoint=f"{relay.endpoint}/{server.account}")
        archive = big_chart(tmp_path, "big", 16)
        async with gateway(tmp_path, repo.storage) as gw:
            small = build_chart(tmp_path / "s", "small", "1.0.0")
            assert (await post_chart(gw, small, "small", "1.0.0")).status_code == 201
            index_before = repo.index()
            # Cut the connection once ~10 MB of the archive went up (its second part).
            relay.cut_after = relay.upstream_bytes + 10_000_000
            response = await post_chart(gw, archive, "big", "1.0.0")
            assert relay.cut_event.is_set()
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert repo.storage["repositoryUrl"] in problem["detail"]
            # Nothing half-stored: no archive, the index as it was, no package record.
            assert "charts/big-1.0.0.tgz" not in repo.object_keys()
            assert repo.index() == index_before
            # While the store is away, a list says so too (503), never an empty catalogue.
            away = await gw.get(PACKAGES, params={"name": "big"})
            assert away.status_code == 503, away.text
            relay.restore()
            assert (await gw.get(PACKAGES, params={"name": "big"})).json()["total"] == 0
            # The store is back: the same upload succeeds (the claim left behind is taken
            # back by the instance that made it, not a 409 for claimTtl).
            retried = await post_chart(gw, archive, "big", "1.0.0")
            assert retried.status_code == 201, retried.text
            assert repo.versions() == {"small:1.0.0", "big:1.0.0"}
            assert not [k for k in repo.object_keys() if "/.netweave/claims/" in k]
    finally:
        relay.close()


async def test_wrong_s3_credentials_name_the_setting(tmp_path: Path) -> None:
    with run_moto(enforce_auth=True) as server:
        storage = {
            "kind": "s3",
            "repositoryUrl": "s3://no-such-key/charts",
            "region": "us-east-1",
            "endpoint": server.endpoint,
            "accessKeyId": "AKIAWRONGWRONGWRONG",
            "secretAccessKey": "wrong-secret-value",
        }
        async with gateway(tmp_path, storage) as gw:
            archive = build_chart(tmp_path / "c", "c", "1.0.0")
            response = await post_chart(gw, archive, "c", "1.0.0")
            assert response.status_code == 502, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            detail = response.json()["detail"]
            assert "storage.accessKeyId" in detail and "refused the credentials" in detail
            assert "wrong-secret-value" not in response.text


async def test_wrong_azure_key_names_the_setting(
    azure_server: AzureServer, adapter_factory: AdapterFactory, tmp_path: Path
) -> None:
    repo = azure_repo(azure_server)
    storage = dict(repo.storage, accountKey="d3Jvbmcta2V5LXdyb25nLWtleQ==")
    adapter = await adapter_factory({"storage": storage})
    with pytest.raises(BackendError) as caught:
        await adapter.list_packages()
    assert caught.value.status == 502
    assert "storage.accountKey" in caught.value.message
    with pytest.raises(BackendError):
        await adapter.upload_package(upload_of(build_chart(tmp_path / "c", "c", "1.0.0")))
    health = await adapter.health()
    assert not health.healthy and "storage.accountKey" in (health.message or "")
    assert repo.object_keys() == []


GCS_ACCOUNT = "charts@netweave-test.iam.gserviceaccount.com"


def service_account(key_id: str) -> tuple[rsa.RSAPrivateKey, str]:
    """A new RSA key and a service-account key file (JSON) for it, as Google issues one."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = {
        "type": "service_account",
        "project_id": "netweave-test",
        "client_email": GCS_ACCOUNT,
        "private_key_id": key_id,
        "private_key": pem,
    }
    return private, json.dumps(key)


async def test_wrong_gcs_service_account_key_names_the_setting(tmp_path: Path) -> None:
    """The store knows the account's key ``k1``; the configured key claims to be ``k1`` but is
    another private key (a rotated-away key file): every request is a 401 (``tests/gcsfake``
    checks the JWT obstore signs with the key, as Google does). The upload answers a 502
    problem body naming ``storage.serviceAccountKey``, and the adapter's health says the same,
    neither showing the key; nothing is stored. The same gateway data with the right key: the
    upload lands."""
    known, right = service_account("k1")
    _, wrong = service_account("k1")
    with run_gcs() as (endpoint, state):
        state.service_accounts[GCS_ACCOUNT] = {"k1": known.public_key()}
        state.buckets["charts-auth"] = {}
        storage = {
            "kind": "gcs",
            "repositoryUrl": "gs://charts-auth/charts",
            "endpoint": endpoint,
            "serviceAccountKey": wrong,
        }
        archive = build_chart(tmp_path / "c", "c", "1.0.0")
        async with gateway(tmp_path, storage) as gw:
            response = await post_chart(gw, archive, "c", "1.0.0")
            assert response.status_code == 502, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            detail = response.json()["detail"]
            assert "storage.serviceAccountKey" in detail, detail
            assert "refused the credentials" in detail, detail
            adapters = await gw.get("/o2dms/v1/adapters")
            (health,) = [a["health"] for a in adapters.json()["items"]]
            assert not health["healthy"], health
            assert "storage.serviceAccountKey" in health["message"], health
            for text in (response.text, adapters.text):
                assert "PRIVATE KEY" not in text and json.loads(wrong)["private_key"] not in text
        assert state.refused > 0
        assert state.buckets["charts-auth"] == {}
        async with gateway(tmp_path, {**storage, "serviceAccountKey": right}) as gw:
            fixed = await post_chart(gw, archive, "c", "1.0.0")
            assert fixed.status_code == 201, fixed.text
        assert set(state.buckets["charts-auth"]) == {"charts/c-1.0.0.tgz", "charts/index.yaml"}


@pytest.mark.parametrize(
    "credentials",
    [
        {"serviceAccountKey": "/var/run/secrets/gcs.json"},  # a path where the JSON belongs
        {
            "serviceAccountKey": json.dumps(
                {"client_email": GCS_ACCOUNT, "private_key": "x", "private_key_id": "k1"}
            )
        },
        {"serviceAccountPath": "/nonexistent/netweave/gcs.json"},
    ],
    ids=["path-as-key", "not-a-pem", "missing-file"],
)
def test_unreadable_gcs_key_names_the_setting(credentials: dict[str, str]) -> None:
    """A key obstore cannot read fails when the store is made (the gateway does not start),
    with an error naming the setting."""
    storage = {"kind": "gcs", "repositoryUrl": "gs://b/charts", "endpoint": "http://127.0.0.1:9"}
    with pytest.raises(BackendError) as caught:
        store_of({**storage, **credentials})
    assert "storage.serviceAccountKey / storage.serviceAccountPath" in caught.value.message


async def test_missing_bucket_is_a_clear_error(
    s3_server: S3Server, adapter_factory: AdapterFactory
) -> None:
    storage = dict(s3_repo(s3_server).storage, repositoryUrl="s3://never-made-bucket/x")
    adapter = await adapter_factory({"storage": storage})
    with pytest.raises(BackendError) as caught:
        await adapter.list_packages()
    assert "storage.repositoryUrl" in caught.value.message


async def test_credentials_from_variables_in_the_configuration(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The design note's form: ``${VAR}`` in the YAML, expanded by the gateway's loader."""
    from netweave.config import load_settings

    repo = s3_repo(s3_server)
    monkeypatch.setenv("NW_TEST_S3_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("NW_TEST_S3_SECRET", s3_server.secret_access_key)
    config = tmp_path / "netweave.yaml"
    config.write_text(
        textwrap.dedent(
            f"""            plugins:
              dms:
                - name: helm-s3
                  type: helm
                  config:
                    storage:
                      kind: s3
                      repositoryUrl: "{repo.storage["repositoryUrl"]}"
                      region: us-east-1
                      endpoint: "{s3_server.endpoint}"
                      accessKeyId: ${{NW_TEST_S3_KEY_ID}}
                      secretAccessKey: ${{NW_TEST_S3_SECRET}}
            """
        )
    )
    settings = load_settings(config_path=config, data_dir=tmp_path / "data")
    (entry,) = settings.plugins.dms
    helm = HelmConfig.model_validate(entry.config)
    assert helm.storage.secret_access_key.get_secret_value() == s3_server.secret_access_key  # type: ignore[union-attr]
    store = store_of(entry.config["storage"])
    assert await store.list_charts() == []
    ok, message = await store.health()
    assert ok, message


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_credentials_from_the_default_chain(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key in the configuration: the cloud's default chain gives it — its first link, the
    environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; AZURE_STORAGE_ACCOUNT_KEY); an
    instance role's, workload or managed identity's would be found after it (without the
    variables the store client goes on to the instance metadata address)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "AZURE_")):
            monkeypatch.delenv(name)
    server = request.getfixturevalue(f"{kind}_server")
    if isinstance(server, S3Server):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
        repo, keys = s3_repo(server), ("accessKeyId", "secretAccessKey")
    else:
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", server.key)
        repo, keys = azure_repo(server), ("accountKey",)
    storage = {k: v for k, v in repo.storage.items() if k not in keys}
    async with gateway(tmp_path, storage) as gw:
        archive = build_chart(tmp_path / "c", "chained", "1.0.0")
        response = await post_chart(gw, archive, "chained", "1.0.0")
        assert response.status_code == 201, response.text
        listed = await gw.get(PACKAGES, params={"name": "chained"})
        assert listed.json()["total"] == 1
    assert repo.versions() == {"chained:1.0.0"}


async def test_tls_endpoint_with_its_ca_file_or_refused(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """A store behind a certificate of a private CA: trusted with ``caFile`` (or
    ``insecureSkipTlsVerify``), refused without, with an error naming those settings."""
    pki = make_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    relay = Relay(int(s3_server.endpoint.rsplit(":", 1)[1]), tls=context)
    relay.start()
    try:
        repo = s3_repo(s3_server, endpoint=relay.endpoint)
        archive = build_chart(tmp_path / "c", "tls", "1.0.0")
        digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
        metadata = {"apiVersion": "v2", "name": "tls", "version": "1.0.0"}

        untrusting = store_of(repo.storage)
        with pytest.raises(BackendError) as caught:
            await untrusting.list_charts()
        assert "storage.caFile" in caught.value.message, caught.value.message

        trusting = store_of({**repo.storage, "caFile": str(pki.ca)})
        await trusting.put(archive, "tls", "1.0.0", metadata, digest)
        fetched = await trusting.fetch("tls", "1.0.0", tmp_path / "fetched")
        assert fetched.read_bytes() == archive.read_bytes()

        skipping = store_of({**repo.storage, "insecureSkipTlsVerify": True})
        assert [e.name for e in await skipping.list_charts()] == ["tls"]
        assert repo.versions() == {"tls:1.0.0"}
    finally:
        relay.close()


# -- gcs against a real emulator (fake-gcs-server): the read side ---------------------------
# fake-gcs-server refuses the XML-API writes obstore sends (see tests/fakegcs.py), so a
# repository is written the way Google's client libraries (and the helm-gcs plugin) write
# one — JSON-API uploads — and the ``gcs`` kind reads, fetches and deploys from it.


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    with run_fake_gcs_server(tmp_path_factory.mktemp("fake-gcs")) as process:
        yield process.server


def helm_gcs_repository(server: FakeGcsServer, charts_dir: Path) -> dict[str, Any]:
    """A bucket holding hello-world and an index.yaml with helm-gcs's absolute ``gs://``
    URL; the ``gcs`` storage config for it."""
    bucket = f"nw-{os.getpid()}-{next(_names)}"
    server.create_bucket(bucket)
    server.upload(
        bucket, "charts/hello-world-0.1.0.tgz", (charts_dir / "hello-world-0.1.0.tgz").read_bytes()
    )
    index = textwrap.dedent(
        f"""\
        apiVersion: v1
        entries:
          hello-world:
          - apiVersion: v2
            name: hello-world
            version: 0.1.0
            appVersion: 1.16.0
            digest: {REAL_CHARTS["hello-world-0.1.0.tgz"]}
            urls: [gs://{bucket}/charts/hello-world-0.1.0.tgz]
        generated: "2024-01-01T00:00:00Z"
        """
    )
    server.upload(bucket, "charts/index.yaml", index.encode())
    return {
        "kind": "gcs",
        "repositoryUrl": f"gs://{bucket}/charts",
        "endpoint": server.endpoint,
        "serviceAccountKey": server.service_account_key(),
    }


async def test_gcs_repository_on_fake_gcs_server_is_listed_and_deployed_through_the_api(
    fake_gcs: FakeGcsServer,
    tmp_path: Path,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
    k8s_kubeconfig: Path,
) -> None:
    storage = helm_gcs_repository(fake_gcs, charts_dir)
    cluster = {"kubeconfig": str(k8s_kubeconfig)}
    async with gateway(tmp_path, storage, cluster=cluster) as gw:
        listed = await gw.get(PACKAGES, params={"name": "hello-world"})
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 1
        package = listed.json()["items"][0]
        assert package["artifactVersion"] == "0.1.0"
        request = {"name": "hw", "namespace": "gcs", "packageId": package["packageId"]}
        created = await gw.post("/o2dms/v1/nfDeployments", json=request)
        assert created.status_code == 201, created.text
        operation = await gw.wait(created, wait_seconds=60)
        assert operation["state"] == "COMPLETED", operation
        assert k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", "gcs") is not None
        in_use = await gw.delete(f"{PACKAGES}/{package['packageId']}")
        assert in_use.status_code == 409, in_use.text


async def test_gcs_store_unreachable_is_a_503_then_recovers(
    adapter_factory: AdapterFactory, tmp_path: Path, charts_dir: Path
) -> None:
    """A server of its own, stopped: listing and fetching are 503s naming the repository
    (never an empty catalogue) and health says so; started again over the same files, the
    chart is listed and fetched (digest checked) again."""
    with run_fake_gcs_server(tmp_path / "gcs") as process:
        storage = helm_gcs_repository(process.server, charts_dir)
        adapter = await adapter_factory({"storage": storage})
        assert [p.backend_ref for p in await adapter.list_packages()] == ["hello-world:0.1.0"]
        process.stop()
        with pytest.raises(BackendUnavailable) as caught:
            await adapter.list_packages()
        assert caught.value.status == 503
        assert storage["repositoryUrl"] in caught.value.message
        with pytest.raises(BackendUnavailable) as fetching:
            await adapter.store.fetch("hello-world", "0.1.0", tmp_path / "away")
        assert fetching.value.status == 503
        assert not (await adapter.health()).healthy
        process.start()
        assert [p.backend_ref for p in await adapter.list_packages()] == ["hello-world:0.1.0"]
        fetched = await adapter.store.fetch("hello-world", "0.1.0", tmp_path / "back")
        digest = REAL_CHARTS["hello-world-0.1.0.tgz"]
        assert hashlib.sha256(fetched.read_bytes()).hexdigest() == digest

"""SOL005 ``vnfpkgm`` over the Helm adapter, the real Helm SDK and the Kubernetes API emulator:
one store, two faces.

- a bare chart uploaded through ``/o2dms/v1`` is at once an ONBOARDED, ENABLED VNF package with
  a generated VNFD (one VDU per rendered workload, one aspect on its replica key, the same on
  every read and after a restart);
- a CSAR built here (SOL001 VNFD + chart) onboarded through ``vnfpkgm`` is at once a native
  package whose chart deploys through ``/o2dms/v1`` and through the SOL003 face;
- states agree across both faces (disable ↔ DEPRECATED, IN_USE while deployed, 409s);
- hostile CSARs are refused with 4xx problems and leave nothing (no native package, no chart in
  the repository, no file).

Every JSON answer of ``/vnfpkgm/v2`` is validated against the SOL005 V3.7.1 contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chartkit import DEPLOYMENT, build_chart
from conftest import shared_dir
from killedhelm import release_records
from netweave.adapters import charts
from netweave.testing.contracts import ContractValidator
from netweave.testing.gateway import GatewayClient, gateway_settings, running_gateway
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.vnfpkgm import (
    build_csar,
    sol003_vnfpkgm_contract,
    sol005_vnfpkgm_contract,
    vnfd_document,
)
from netweave_helm import validation
from servers import serve_asgi, serve_directory

V2 = "/vnfpkgm/v2"
HEADERS = {"Version": "2.4.0"}
NS = "pkg"


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    return sol005_vnfpkgm_contract(shared_dir())


def _settings(tmp_path: Path, kubeconfig: Path) -> Any:
    return gateway_settings(
        tmp_path / "data",
        dms=[
            {
                "name": "helm-local",
                "type": "helm",
                "default": True,
                "config": {
                    "storage": {"kind": "local"},
                    "cluster": {"kubeconfig": str(kubeconfig), "wait": "none"},
                    "timeouts": {"write": 30},
                },
            }
        ],
    )


@pytest.fixture
async def gw(tmp_path: Path, k8s_kubeconfig: Path) -> AsyncIterator[GatewayClient]:
    async with running_gateway(tmp_path, settings=_settings(tmp_path, k8s_kubeconfig)) as client:
        yield client


async def call(
    gw: GatewayClient,
    contract: ContractValidator,
    method: str,
    path: str,
    body: Any = None,
    *,
    content: bytes | None = None,
    params: dict[str, str] | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {**HEADERS, **headers}
    if content is not None:
        response = await gw.request(method, V2 + path, content=content, headers=sent)
    else:
        response = await gw.request(method, V2 + path, json=body, headers=sent, params=params)
    kind = response.headers.get("content-type", "")
    answer = response.json() if response.content and "json" in kind else None
    if answer is not None or not response.content:
        contract.validate_response(
            method, path.split("?")[0], response.status_code, answer, headers=dict(response.headers)
        )
    return response


async def onboard_native(gw: GatewayClient, archive: Path, name: str, version: str) -> str:
    with archive.open("rb") as handle:
        response = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            data={"name": name, "artifactVersion": version},
            files={"chart": (archive.name, handle, "application/gzip")},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["packageId"])


def two_workloads(tmp_path: Path, name: str = "shop", version: str = "1.0.0") -> Path:
    """A chart rendering two Deployments, each scaled by its own values key, and a DaemonSet."""
    backend = DEPLOYMENT.replace("-app", "-api").replace(
        ".Values.replicaCount", ".Values.api.replicas"
    )
    daemon = (
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {{ .Release.Name }}-agent\n"
        "spec:\n  selector:\n    matchLabels: {a: b}\n  template:\n    metadata:\n"
        "      labels: {a: b}\n    spec:\n      containers:\n        - name: agent\n"
        "          image: example/agent:1\n"
    )
    return build_chart(
        tmp_path / "charts",
        name,
        version,
        values={"replicaCount": 2, "tag": "1", "api": {"replicas": 3}},
        templates={"web.yaml": DEPLOYMENT, "api.yaml": backend, "agent.yaml": daemon},
    )


async def create_package(gw: GatewayClient, contract: ContractValidator, **data: Any) -> str:
    created = await call(gw, contract, "POST", "/vnf_packages", {"userDefinedData": data})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["onboardingState"] == "CREATED" and body["operationalState"] == "DISABLED"
    assert created.headers["Location"].endswith(f"/vnf_packages/{body['id']}")
    return str(body["id"])


async def upload(
    gw: GatewayClient, contract: ContractValidator, pkg_id: str, csar: Path
) -> httpx.Response:
    return await call(
        gw,
        contract,
        "PUT",
        f"/vnf_packages/{pkg_id}/package_content",
        content=csar.read_bytes(),  # noqa: ASYNC240  (a small test file)
        **{"Content-Type": "application/zip"},
    )


async def test_a_bare_chart_is_an_onboarded_vnf_package_with_a_generated_vnfd(
    gw: GatewayClient, contract: ContractValidator, tmp_path: Path, k8s_kubeconfig: Path
) -> None:
    package_id = await onboard_native(gw, two_workloads(tmp_path), "shop", "1.0.0")
    listed = await call(gw, contract, "GET", "/vnf_packages")
    assert listed.status_code == 200, listed.text
    (item,) = [p for p in listed.json() if p["id"] == package_id]
    assert (item["onboardingState"], item["operationalState"], item["usageState"]) == (
        "ONBOARDED",
        "ENABLED",
        "NOT_IN_USE",
    )
    assert (item["vnfdId"], item["vnfProductName"], item["vnfdVersion"]) == (
        package_id,
        "shop",
        "1.0.0",
    )
    assert item["vnfSoftwareVersion"] == "1.0.0"  # appVersion
    assert "additionalArtifacts" not in item  # excluded by default (SOL005)

    vnfd = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/vnfd", Accept="text/plain")
    assert vnfd.status_code == 200, vnfd.text
    text = vnfd.text
    document = yaml.safe_load(text)
    nodes = document["topology_template"]["node_templates"]
    vdus = {
        name: node
        for name, node in nodes.items()
        if node["type"] == "tosca.nodes.nfv.Vdu.OsContainerDeployableUnit"
    }
    assert set(vdus) == {"shop_app", "shop_api", "shop_agent"}
    assert vdus["shop_app"]["metadata"]["netweave.replicaKey"] == "replicaCount"
    assert vdus["shop_api"]["metadata"]["netweave.replicaKey"] == "api.replicas"
    assert "netweave.replicaKey" not in vdus["shop_agent"].get("metadata", {})
    assert nodes["VNF"]["properties"]["descriptor_id"] == package_id
    policies = {
        next(iter(p)): next(iter(p.values())) for p in document["topology_template"]["policies"]
    }
    aspects = policies["scaling_aspects"]["properties"]["aspects"]
    assert set(aspects) == {"shop_app", "shop_api"}  # two scalable workloads, one aspect each
    levels = policies["instantiation_levels"]["properties"]["levels"]
    # The defaults (2 and 3 replicas) at the vnflcm face's rule: replicas = 1 + level.
    assert levels["default"]["scale_info"] == {
        "shop_app": {"scale_level": 1},
        "shop_api": {"scale_level": 2},
    }

    # The package content is a CSAR built from the chart: it passes netweave's own checks.
    content = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/package_content")
    assert content.status_code == 200, content.text
    assert content.headers["content-type"].startswith("application/zip")
    csar = tmp_path / "built.csar"
    csar.write_bytes(content.content)
    from netweave.packaging.csar import inspect_csar

    info = inspect_csar(csar)
    assert info.vnfd.vnfd_id == package_id and info.chart.endswith("shop-1.0.0.tgz")
    part = await call(
        gw, contract, "GET", f"/vnf_packages/{package_id}/package_content", Range="bytes=0-9"
    )
    assert part.status_code == 206 and part.content == content.content[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(content.content)}"
    beyond = await call(
        gw,
        contract,
        "GET",
        f"/vnf_packages/{package_id}/package_content",
        Range=f"bytes={len(content.content) + 5}-",
    )
    assert beyond.status_code == 416

    manifest = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/manifest")
    assert manifest.status_code == 200 and "Source: Definitions/vnfd.yaml" in manifest.text
    artifact = await call(
        gw, contract, "GET", f"/vnf_packages/{package_id}/artifacts/Files/kubernetes/shop-1.0.0.tgz"
    )
    assert artifact.status_code == 200
    assert artifact.content == (tmp_path / "charts" / "shop-1.0.0.tgz").read_bytes()
    everything = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/artifacts")
    with zipfile.ZipFile(io.BytesIO(everything.content)) as archive:
        assert archive.namelist() == ["Files/kubernetes/shop-1.0.0.tgz"]

    # The VNFM-facing SOL003 reads by vnfdId answer the same, validated against SOL003.
    sol003 = sol003_vnfpkgm_contract(shared_dir())
    onboarded = await call(gw, sol003, "GET", "/onboarded_vnf_packages")
    assert [p["vnfdId"] for p in onboarded.json()] == [package_id]
    one = await call(gw, sol003, "GET", f"/onboarded_vnf_packages/{package_id}")
    assert one.json()["id"] == package_id and one.json()["operationalState"] == "ENABLED"
    same = await call(
        gw, sol003, "GET", f"/onboarded_vnf_packages/{package_id}/vnfd", Accept="text/plain"
    )
    assert same.text == text
    whole = await call(gw, sol003, "GET", f"/onboarded_vnf_packages/{package_id}/package_content")
    assert whole.content == content.content
    missing = await call(gw, sol003, "GET", "/onboarded_vnf_packages/nope")
    assert missing.status_code == 404

    # Stable across restarts and replicas: a second gateway on the same store and data.
    async with running_gateway(
        tmp_path / "second",
        settings=_settings(tmp_path, k8s_kubeconfig),
        store_url=f"sqlite:///{tmp_path / 'netweave.db'}",
    ) as other:
        again = await call(
            other, contract, "GET", f"/vnf_packages/{package_id}/vnfd", Accept="text/plain"
        )
        assert again.text == text


async def test_a_csar_onboards_into_one_store_and_deploys(
    gw: GatewayClient,
    contract: ContractValidator,
    tmp_path: Path,
    k8s_emulator: KubernetesEmulator,
) -> None:
    chart = build_chart(
        tmp_path / "c",
        "cnf",
        "2.0.0",
        values={"replicaCount": 1, "tag": "7"},
        templates={"deployment.yaml": DEPLOYMENT},
    )
    vnfd_id = "b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"
    csar = build_csar(tmp_path / "cnf.csar", vnfd=vnfd_document(vnfd_id), chart=chart)
    pkg_id = await create_package(gw, contract, team="ran")
    # No content yet: the VNFD and the content are 409.
    early = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}/package_content")
    assert early.status_code == 409
    uploaded = await upload(gw, contract, pkg_id, csar)
    assert uploaded.status_code == 202, uploaded.text
    got = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}", params={"all_fields": ""})
    body = got.json()
    assert (body["onboardingState"], body["operationalState"], body["usageState"]) == (
        "ONBOARDED",
        "ENABLED",
        "NOT_IN_USE",
    )
    assert (body["vnfdId"], body["vnfProvider"], body["vnfProductName"]) == (
        vnfd_id,
        "Example Co",
        "example-cnf",
    )
    assert body["userDefinedData"] == {"team": "ran"}
    assert body["compatibleSpecificationVersions"] == ["2.6.1", "4.3.1"]
    paths = {a["artifactPath"] for a in body["additionalArtifacts"]}
    assert "Files/kubernetes/chart.tgz" in paths
    # The same package natively: its id is the vnfdId, its chart is in the Helm repository.
    native = await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{vnfd_id}")
    assert native.status_code == 200, native.text
    assert (native.json()["name"], native.json()["state"]) == ("cnf", "AVAILABLE")
    # The uploaded CSAR comes back byte for byte.
    content = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}/package_content")
    assert content.content == csar.read_bytes()
    vnfd = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}/vnfd", Accept="application/zip")
    with zipfile.ZipFile(io.BytesIO(vnfd.content)) as archive:
        assert "Definitions/vnfd.yaml" in archive.namelist()

    # Deployed through the SOL003 face by vnfdId: the VNFD's aspect drives scale.
    headers = {"Version": "2.3.0"}
    created = await gw.post(
        "/vnflcm/v2/vnf_instances",
        json={"vnfdId": vnfd_id, "vnfInstanceName": "cnf"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    instance_id = created.json()["id"]
    started = await gw.post(
        f"/vnflcm/v2/vnf_instances/{instance_id}/instantiate",
        json={"flavourId": "small", "additionalParams": {"namespace": NS, "releaseName": "cnf"}},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    op_id = started.headers["Location"].rsplit("/", 1)[1]
    operation = await gw.wait_operation(op_id)
    assert operation["state"] == "COMPLETED", operation
    assert release_records(k8s_emulator, "cnf", NS) == [(1, "deployed")]
    deployment = k8s_emulator.get("apps/v1", "Deployment", "cnf-app", NS)
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    # The VNFD's aspect (its VDU's replica key) is the instance's: scale it out two steps.
    instance = await gw.get(f"/vnflcm/v2/vnf_instances/{instance_id}", headers=headers)
    scale_status = instance.json()["instantiatedVnfInfo"]["scaleStatus"]
    assert scale_status == [{"aspectId": "web_aspect", "scaleLevel": 0}]
    scaled = await gw.post(
        f"/vnflcm/v2/vnf_instances/{instance_id}/scale",
        json={"type": "SCALE_OUT", "aspectId": "web_aspect", "numberOfSteps": 2},
        headers=headers,
    )
    assert scaled.status_code == 202, scaled.text
    operation = await gw.wait_operation(scaled.headers["Location"].rsplit("/", 1)[1])
    assert operation["state"] == "COMPLETED", operation
    deployment = k8s_emulator.get("apps/v1", "Deployment", "cnf-app", NS)
    assert deployment is not None and deployment["spec"]["replicas"] == 3

    # IN_USE on both faces; DELETE refused while ENABLED, then while IN_USE.
    got = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}")
    assert got.json()["usageState"] == "IN_USE"
    native = await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{vnfd_id}")
    assert native.json()["state"] == "IN_USE"
    refused = await call(gw, contract, "DELETE", f"/vnf_packages/{pkg_id}")
    assert refused.status_code == 409
    etag = got.headers["ETag"]
    # 412 on a stale If-Match (SOL013 conditional requests; the published SOL005 OpenAPI
    # lists no 412 for this PATCH, so it is checked here, not against the contract).
    stale = await gw.request(
        "PATCH",
        f"{V2}/vnf_packages/{pkg_id}",
        json={"operationalState": "DISABLED"},
        headers={**HEADERS, "If-Match": '"stale"'},
    )
    assert stale.status_code == 412
    assert stale.json()["status"] == 412 and stale.json()["detail"]
    assert (await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{vnfd_id}")).json()["state"] == (
        "IN_USE"
    )
    disabled = await call(
        gw,
        contract,
        "PATCH",
        f"/vnf_packages/{pkg_id}",
        {"operationalState": "DISABLED"},
        **{"If-Match": etag},
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {"operationalState": "DISABLED"}
    native = await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{vnfd_id}")
    assert native.json()["state"] == "IN_USE"  # deprecated, and still used
    in_use = await call(gw, contract, "DELETE", f"/vnf_packages/{pkg_id}")
    assert in_use.status_code == 409
    assert await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{vnfd_id}") is not None


async def test_upload_from_uri_onboards_and_a_failed_fetch_stores_nothing(
    contract: ContractValidator, tmp_path: Path, k8s_kubeconfig: Path
) -> None:
    """``upload_from_uri`` through the real API from a loopback file server the fetch policy
    is told it may reach: a CSAR onboards into one store (native package, chart in the
    repository, the content as fetched); a missing file and a CSAR with a bad digest are
    problem answers naming why, the package ERROR with nothing stored, and it takes content
    again."""
    from netweave.config import FetchSettings

    served = tmp_path / "served"
    served.mkdir()
    chart = build_chart(tmp_path / "c", "fetched", "1.0.0")
    good = build_csar(served / "good.csar", vnfd=vnfd_document("fetched-vnfd"), chart=chart)
    build_csar(
        served / "bad.csar",
        vnfd=vnfd_document("bad-vnfd"),
        chart=chart,
        wrong_digest="Files/kubernetes/chart.tgz",
    )
    settings = _settings(tmp_path, k8s_kubeconfig)
    settings.fetch = FetchSettings(allowedCidrs=["127.0.0.0/8"])  # the file server
    data = tmp_path / "data"
    with serve_directory(served) as base:
        async with running_gateway(tmp_path, settings=settings) as gw:

            async def from_uri(pkg_id: str, name: str) -> httpx.Response:
                return await call(
                    gw,
                    contract,
                    "POST",
                    f"/vnf_packages/{pkg_id}/package_content/upload_from_uri",
                    {"addressInformation": f"{base}/{name}"},
                )

            async def nothing_stored(pkg_id: str, state: str) -> None:
                got = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}")
                assert got.json()["onboardingState"] == state
                assert "vnfdId" not in got.json()
                assert (await gw.get("/o2dms/v1/nfDeploymentDescriptors")).json()["items"] == []
                assert not list(data.rglob("fetched-1.0.0.tgz"))
                assert not list(data.rglob("*.csar"))
                assert [p.name for p in (data / "tmp").iterdir()] == []

            pkg_id = await create_package(gw, contract)
            missing = await from_uri(pkg_id, "nope.csar")
            assert missing.status_code == 400, missing.text
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert missing.json()["details"] == {"field": "addressInformation", "status": 404}
            await nothing_stored(pkg_id, "ERROR")  # the upload (the fetch) failed
            failure = (
                await call(
                    gw, contract, "GET", f"/vnf_packages/{pkg_id}", params={"all_fields": ""}
                )
            ).json()["onboardingFailureDetails"]
            assert failure["status"] == 400 and "404" in failure["detail"]

            bad = await from_uri(pkg_id, "bad.csar")
            assert bad.status_code == 400, bad.text
            assert "digest" in bad.json()["detail"]
            await nothing_stored(pkg_id, "ERROR")

            fetched = await from_uri(pkg_id, "good.csar")
            assert fetched.status_code == 202, fetched.text
            got = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}")
            body = got.json()
            assert (body["onboardingState"], body["operationalState"], body["vnfdId"]) == (
                "ONBOARDED",
                "ENABLED",
                "fetched-vnfd",
            )
            native = await gw.get("/o2dms/v1/nfDeploymentDescriptors/fetched-vnfd")
            assert native.status_code == 200 and native.json()["name"] == "fetched"
            content = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}/package_content")
            assert content.content == good.read_bytes()
            assert list(data.rglob("fetched-1.0.0.tgz")) != []  # where the checks above look


async def test_processing_while_the_adapter_stores_the_chart(
    contract: ContractValidator,
    tmp_path: Path,
    k8s_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The body is complete and the adapter is still storing the CSAR's chart (held here):
    the package is PROCESSING, a DELETE and another upload are 409s, the VNFD is not there
    yet (409); released, the upload answers 202 and the package is ONBOARDED."""
    from netweave.api.app import create_app
    from netweave.testing.gateway import TOKEN
    from netweave_helm.adapter import HelmAdapter

    original = HelmAdapter._upload_package
    release = threading.Event()

    async def held(self: HelmAdapter, upload: Any) -> Any:
        for _ in range(400):  # bounded: 20 s
            if release.is_set():
                break
            await asyncio.sleep(0.05)
        return await original(self, upload)

    monkeypatch.setattr(HelmAdapter, "_upload_package", held)
    chart = build_chart(tmp_path / "c", "proc", "1.0.0")
    content = build_csar(tmp_path / "p.csar", vnfd=vnfd_document("proc-vnfd"), chart=chart)
    zip_type = {"Content-Type": "application/zip"}
    with serve_asgi(create_app(_settings(tmp_path, k8s_kubeconfig))) as base:
        auth = {"Authorization": f"Bearer {TOKEN}", **HEADERS}
        async with httpx.AsyncClient(base_url=base + V2, headers=auth, timeout=60) as c:
            pkg_id = (await c.post("/vnf_packages", json={})).json()["id"]
            put = asyncio.create_task(
                c.put(f"/vnf_packages/{pkg_id}/package_content",
                      content=content.read_bytes(), headers=zip_type)
            )  # fmt: skip
            try:
                for _ in range(200):  # bounded: 10 s
                    got = await c.get(f"/vnf_packages/{pkg_id}")
                    if got.json()["onboardingState"] in ("PROCESSING", "ONBOARDED", "ERROR"):
                        break
                    await asyncio.sleep(0.05)
                contract.validate_response(
                    "GET", f"/vnf_packages/{pkg_id}", 200, got.json(), headers=dict(got.headers)
                )
                assert got.json()["onboardingState"] == "PROCESSING"
                assert (await c.delete(f"/vnf_packages/{pkg_id}")).status_code == 409
                again = await c.put(
                    f"/vnf_packages/{pkg_id}/package_content",
                    content=content.read_bytes(),
                    headers=zip_type,
                )
                assert again.status_code == 409, again.text
                vnfd = await c.get(f"/vnf_packages/{pkg_id}/vnfd", headers={"Accept": "text/plain"})
                assert vnfd.status_code == 409, vnfd.text
            finally:
                release.set()
            assert (await put).status_code == 202
            body = (await c.get(f"/vnf_packages/{pkg_id}")).json()
            assert (body["onboardingState"], body["vnfdId"]) == ("ONBOARDED", "proc-vnfd")


def held_body(content: bytes, release: threading.Event) -> Any:
    """An ASGI app answering any GET with ``content``: its first 1 000 bytes at once, the
    rest once ``release`` is set (bounded: 20 s)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = [(b"content-type", b"application/zip"), (b"content-length", b"%d" % len(content))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content[:1000], "more_body": True})
        for _ in range(400):
            if release.is_set():
                break
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": content[1000:]})

    return app


async def test_uploading_while_the_content_arrives_and_an_interrupted_transfer_is_error(
    contract: ContractValidator, tmp_path: Path, k8s_kubeconfig: Path
) -> None:
    """Through a real server (uvicorn on loopback; the test client would read the body
    first): while a PUT's body is still arriving the package is UPLOADING, another upload and
    a DELETE are 409s; once the body is complete it onboards (202, ONBOARDED). A client that
    goes away mid-body leaves the package ERROR (not CREATED or UPLOADING for ever), nothing
    of the content kept, and it takes content again. ``upload_from_uri`` likewise: UPLOADING
    while the fetched content is still arriving."""
    from netweave.api.app import create_app
    from netweave.config import FetchSettings
    from netweave.testing.gateway import TOKEN

    chart = build_chart(tmp_path / "c", "slow", "1.0.0")
    csar = build_csar(tmp_path / "slow.csar", vnfd=vnfd_document("slow-vnfd"), chart=chart)
    content = csar.read_bytes()
    settings = _settings(tmp_path, k8s_kubeconfig)
    settings.fetch = FetchSettings(allowedCidrs=["127.0.0.0/8"])  # the held file server
    app = create_app(settings)
    zip_type = {"Content-Type": "application/zip"}
    data = tmp_path / "data"

    async def held(gate: asyncio.Event) -> AsyncIterator[bytes]:
        yield content[:1000]
        await gate.wait()
        yield content[1000:]

    with serve_asgi(app) as base:
        auth = {"Authorization": f"Bearer {TOKEN}", **HEADERS}
        async with httpx.AsyncClient(base_url=base + V2, headers=auth, timeout=60) as c:

            async def state_of(pkg_id: str, leaving: str) -> dict[str, Any]:
                for _ in range(200):  # bounded: 10 s
                    got = await c.get(f"/vnf_packages/{pkg_id}", params={"all_fields": ""})
                    body = got.json()
                    if body["onboardingState"] != leaving:
                        break
                    await asyncio.sleep(0.05)
                contract.validate_response(
                    "GET", f"/vnf_packages/{pkg_id}", 200, body, headers=dict(got.headers)
                )
                return dict(body)

            pkg_id = (await c.post("/vnf_packages", json={})).json()["id"]
            gate = asyncio.Event()
            put = asyncio.create_task(
                c.put(f"/vnf_packages/{pkg_id}/package_content", content=held(gate),
                      headers=zip_type)
            )  # fmt: skip
            assert (await state_of(pkg_id, "CREATED"))["onboardingState"] == "UPLOADING"
            again = await c.put(
                f"/vnf_packages/{pkg_id}/package_content", content=content, headers=zip_type
            )
            assert again.status_code == 409, again.text
            assert again.headers["content-type"].startswith("application/problem+json")
            deleting = await c.delete(f"/vnf_packages/{pkg_id}")
            assert deleting.status_code == 409, deleting.text
            gate.set()
            done = await put
            assert done.status_code == 202, done.text
            body = await state_of(pkg_id, "UPLOADING")
            assert (body["onboardingState"], body["vnfdId"]) == ("ONBOARDED", "slow-vnfd")

            other = (await c.post("/vnf_packages", json={})).json()["id"]
            never = asyncio.Event()
            gone = asyncio.create_task(
                c.put(f"/vnf_packages/{other}/package_content", content=held(never),
                      headers=zip_type)
            )  # fmt: skip
            assert (await state_of(other, "CREATED"))["onboardingState"] == "UPLOADING"
            gone.cancel()  # the client goes away with the body half sent
            with contextlib.suppress(asyncio.CancelledError):
                await gone
            body = await state_of(other, "UPLOADING")
            assert body["onboardingState"] == "ERROR", body
            assert body["onboardingFailureDetails"]["status"] >= 400
            assert [p.name for p in (data / "tmp").iterdir()] == []
            assert len(list(data.rglob("*.csar"))) == 1  # the first package's only
            second = build_chart(tmp_path / "c2", "slow2", "1.0.0")
            csar2 = build_csar(tmp_path / "s2.csar", vnfd=vnfd_document("slow-2"), chart=second)
            retried = await c.put(
                f"/vnf_packages/{other}/package_content",
                content=csar2.read_bytes(),
                headers=zip_type,
            )
            assert retried.status_code == 202, retried.text
            body = await state_of(other, "ERROR")
            assert (body["onboardingState"], body["vnfdId"]) == ("ONBOARDED", "slow-2")

            # upload_from_uri: UPLOADING while the fetched content is still arriving.
            third = build_chart(tmp_path / "c3", "slow3", "1.0.0")
            csar3 = build_csar(tmp_path / "s3.csar", vnfd=vnfd_document("slow-3"), chart=third)
            release = threading.Event()
            with serve_asgi(held_body(csar3.read_bytes(), release)) as held_base:
                fetched = (await c.post("/vnf_packages", json={})).json()["id"]
                fetching = asyncio.create_task(
                    c.post(f"/vnf_packages/{fetched}/package_content/upload_from_uri",
                           json={"addressInformation": f"{held_base}/slow.csar"})
                )  # fmt: skip
                try:
                    body = await state_of(fetched, "CREATED")
                    assert body["onboardingState"] == "UPLOADING"
                    assert (await c.delete(f"/vnf_packages/{fetched}")).status_code == 409
                finally:
                    release.set()
                assert (await fetching).status_code == 202
            body = await state_of(fetched, "UPLOADING")
            assert (body["onboardingState"], body["vnfdId"]) == ("ONBOARDED", "slow-3")


HOSTILE = ("bad-digest", "zip-slip", "bomb", "broken-vnfd", "network-import", "symlink")


def hostile_csar(tmp_path: Path, chart: Path, case: str) -> Path:
    vnfd: Any = vnfd_document(f"evil-{case}")
    kwargs: dict[str, Any] = {}
    if case == "bad-digest":
        kwargs["wrong_digest"] = "Files/kubernetes/chart.tgz"
    elif case == "zip-slip":
        kwargs["raw_entries"] = {"../../escape.txt": b"x"}
    elif case == "bomb":
        kwargs["extra"] = {"Files/zeros.bin": b"\0" * (24 << 20)}
    elif case == "broken-vnfd":
        vnfd["topology_template"]["policies"][1]["web_deltas"]["properties"]["aspect"] = "nope"
    elif case == "network-import":
        vnfd["imports"].append("https://example.com/types.yaml")
    csar = build_csar(tmp_path / f"{case}.csar", vnfd=vnfd, chart=chart, **kwargs)
    if case == "symlink":
        with zipfile.ZipFile(csar, "a") as archive:
            info = zipfile.ZipInfo("Files/link")
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return csar


async def test_hostile_csars_are_refused_and_leave_nothing(
    gw: GatewayClient, contract: ContractValidator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = build_chart(tmp_path / "c", "evil", "1.0.0")
    data = tmp_path / "data"
    # The adapter's own reading of a chart archive (the core inspects a CSAR's chart while it
    # leaves the CSAR, and hands the result over only once the chart's digest matched).
    inspected: list[Path] = []

    def counting(path: Path, limits: Any = charts.DEFAULT_LIMITS) -> Any:
        inspected.append(path)
        return charts.inspect_archive(path, limits)

    monkeypatch.setattr(validation, "inspect_archive", counting)
    for case in HOSTILE:
        csar = hostile_csar(tmp_path, chart, case)
        pkg_id = await create_package(gw, contract)
        refused = await upload(gw, contract, pkg_id, csar)
        assert 400 <= refused.status_code < 500, (case, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["detail"], case
        got = await call(gw, contract, "GET", f"/vnf_packages/{pkg_id}", params={"all_fields": ""})
        body = got.json()
        assert body["onboardingState"] == "ERROR", case
        assert body["onboardingFailureDetails"]["status"] == refused.status_code
        assert "vnfdId" not in body
        # Nothing kept: no native package, no chart in the repository, no file.
        native = await gw.get("/o2dms/v1/nfDeploymentDescriptors")
        assert native.json()["items"] == [], case
        assert not list(data.rglob("evil-1.0.0.tgz")), case
        assert not list(data.rglob("*.csar")), case
        assert [p.name for p in (data / "tmp").iterdir()] == [], case
        assert charts._received == {}, case  # no inspection result kept for a refused chart
    # ERROR takes content again: a good CSAR now onboards into the last one, the adapter
    # taking the inspection made as the chart left the CSAR (no second read of it).
    good = build_csar(tmp_path / "good.csar", vnfd=vnfd_document("good-1"), chart=chart)
    inspected.clear()
    assert (await upload(gw, contract, pkg_id, good)).status_code == 202
    assert inspected == []
    assert charts._received == {}
    assert list(data.rglob("*.csar")) != []
    assert list(data.rglob("evil-1.0.0.tgz")) != []  # where the checks above would find it


async def test_each_real_chart_is_a_vnf_package(
    gw: GatewayClient, contract: ContractValidator, charts_dir: Path
) -> None:
    for archive in sorted(charts_dir.glob("*.tgz")):  # noqa: ASYNC240
        name, _, version = archive.name.removesuffix(".tgz").rpartition("-")
        package_id = await onboard_native(gw, archive, name, version)
        got = await call(gw, contract, "GET", f"/vnf_packages/{package_id}")
        assert got.status_code == 200 and got.json()["onboardingState"] == "ONBOARDED"
        # vnfProvider / vnfProductName / vnfSoftwareVersion from the chart's Chart.yaml.
        meta = chart_yaml(archive)
        maintainers = meta.get("maintainers") or [{}]
        provider = maintainers[0].get("name") or "netweave"
        software = str(meta.get("appVersion") or meta["version"])
        body = got.json()
        assert (body["vnfProvider"], body["vnfProductName"], body["vnfSoftwareVersion"]) == (
            provider,
            meta["name"],
            software,
        ), archive.name
        vnfd = await call(
            gw, contract, "GET", f"/vnf_packages/{package_id}/vnfd", Accept="text/plain"
        )
        assert vnfd.status_code == 200, (archive.name, vnfd.text)
        document = yaml.safe_load(vnfd.text)
        props = document["topology_template"]["node_templates"]["VNF"]["properties"]
        assert (props["descriptor_id"], props["product_name"]) == (package_id, name)
        assert (props["provider"], props["software_version"]) == (provider, software)
        await read_every_route(gw, contract, package_id, archive)


async def test_a_real_chart_instantiates_through_the_sol003_face(
    gw: GatewayClient,
    contract: ContractValidator,
    charts_dir: Path,
    k8s_emulator: KubernetesEmulator,
) -> None:
    """A real chart onboarded bare is instantiated by its vnfdId with its generated VNFD's
    flavour: the release and its Deployment are in the emulator, the package IN_USE on both
    faces; terminated, NOT_IN_USE again and deletable once disabled."""
    package_id = await onboard_native(
        gw, charts_dir / "hello-world-0.1.0.tgz", "hello-world", "0.1.0"
    )
    headers = {"Version": "2.3.0"}
    created = await gw.post(
        "/vnflcm/v2/vnf_instances", json={"vnfdId": package_id}, headers=headers
    )
    assert created.status_code == 201, created.text
    instance_id = created.json()["id"]
    started = await gw.post(
        f"/vnflcm/v2/vnf_instances/{instance_id}/instantiate",
        json={"flavourId": "default", "additionalParams": {"namespace": NS, "releaseName": "hw"}},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    operation = await gw.wait_operation(started.headers["Location"].rsplit("/", 1)[1])
    assert operation["state"] == "COMPLETED", operation
    assert release_records(k8s_emulator, "hw", NS) == [(1, "deployed")]
    assert k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", NS) is not None
    got = await call(gw, contract, "GET", f"/vnf_packages/{package_id}")
    assert got.json()["usageState"] == "IN_USE"
    native = await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{package_id}")
    assert native.json()["state"] == "IN_USE"

    ended = await gw.post(
        f"/vnflcm/v2/vnf_instances/{instance_id}/terminate",
        json={"terminationType": "FORCEFUL"},
        headers=headers,
    )
    assert ended.status_code == 202, ended.text
    operation = await gw.wait_operation(ended.headers["Location"].rsplit("/", 1)[1])
    assert operation["state"] == "COMPLETED", operation
    assert k8s_emulator.get("apps/v1", "Deployment", "hw-hello-world", NS) is None
    deleted = await gw.delete(f"/vnflcm/v2/vnf_instances/{instance_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    got = await call(gw, contract, "GET", f"/vnf_packages/{package_id}")
    assert got.json()["usageState"] == "NOT_IN_USE"
    disabled = await call(
        gw, contract, "PATCH", f"/vnf_packages/{package_id}", {"operationalState": "DISABLED"}
    )
    assert disabled.status_code == 200, disabled.text
    assert (await call(gw, contract, "DELETE", f"/vnf_packages/{package_id}")).status_code == 204
    assert (await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/{package_id}")).status_code == 404


def chart_yaml(archive: Path) -> dict[str, Any]:
    import tarfile

    with tarfile.open(archive, "r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and
                      m.name.endswith("/Chart.yaml"))  # fmt: skip
        handle = tar.extractfile(member)
        assert handle is not None
        loaded = yaml.safe_load(handle.read())
    assert isinstance(loaded, dict)
    return loaded


async def read_every_route(
    gw: GatewayClient, contract: ContractValidator, package_id: str, archive: Path
) -> None:
    """The content routes of a bare chart's VNF package, on both faces: the CSAR built from
    the chart passes netweave's own checks and carries the chart byte for byte."""
    from netweave.packaging.csar import inspect_csar

    content = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/package_content")
    assert content.status_code == 200, (archive.name, content.text)
    built = archive.parent / f"{package_id}.csar.check"
    built.write_bytes(content.content)
    try:
        info = inspect_csar(built)
    finally:
        built.unlink()
    assert info.vnfd.vnfd_id == package_id, archive.name
    head = await call(
        gw, contract, "GET", f"/vnf_packages/{package_id}/package_content", Range="bytes=0-99"
    )
    assert head.status_code == 206 and head.content == content.content[:100]
    manifest = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/manifest")
    assert manifest.status_code == 200 and f"Files/kubernetes/{archive.name}" in manifest.text
    chart = await call(
        gw, contract, "GET", f"/vnf_packages/{package_id}/artifacts/Files/kubernetes/{archive.name}"
    )
    assert chart.status_code == 200
    assert chart.content == archive.read_bytes(), archive.name  # noqa: ASYNC240
    everything = await call(gw, contract, "GET", f"/vnf_packages/{package_id}/artifacts")
    with zipfile.ZipFile(io.BytesIO(everything.content)) as zipped:
        assert zipped.namelist() == [f"Files/kubernetes/{archive.name}"]
    zipped_vnfd = await call(
        gw, contract, "GET", f"/vnf_packages/{package_id}/vnfd", Accept="application/zip"
    )
    with zipfile.ZipFile(io.BytesIO(zipped_vnfd.content)) as zipped:
        assert "Definitions/vnfd.yaml" in zipped.namelist()
    sol003 = sol003_vnfpkgm_contract(shared_dir())
    one = await call(gw, sol003, "GET", f"/onboarded_vnf_packages/{package_id}")
    assert one.status_code == 200 and one.json()["vnfdId"] == package_id
    same = await call(gw, sol003, "GET", f"/onboarded_vnf_packages/{package_id}/package_content")
    assert same.content == content.content

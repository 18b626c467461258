"""``/vnfpkgm/v2`` through the real app with memory adapters: SOL013 conventions (Version,
Accept, filters, selectors, paging), the state rules shared with ``/o2dms/v1`` (PATCH ↔ native
state, 409s, ETag/If-Match), CSAR onboarding into a native package, and fetches refused by the
fetch policy. Every JSON answer is validated against the SOL005 contract."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from netweave.testing.contracts import ContractValidator
from netweave.testing.vnfpkgm import build_csar, sol005_vnfpkgm_contract, vnfd_document
from support.gateway import Gateway

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
V2 = "/vnfpkgm/v2"
HEADERS = {"Version": "2.4.0"}


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol005_vnfpkgm_contract(SHARED)


async def call(
    gw: Gateway,
    contract: ContractValidator,
    method: str,
    path: str,
    body: Any = None,
    *,
    params: dict[str, str] | None = None,
    content: bytes | None = None,
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


def chart_bytes(tmp_path: Path, name: str = "web", version: str = "1.0.0") -> Path:
    import io
    import tarfile

    path = tmp_path / f"{name}-{version}.tgz"
    data = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


async def test_conventions_and_the_native_package_as_a_vnf_package(
    gw: Gateway, contract: ContractValidator
) -> None:
    await gw.register_package("app", "1.0.0")
    versions = await gw.request("GET", "/vnfpkgm/api_versions")
    assert versions.json()["apiVersions"] == [{"version": "2.4.0"}]
    missing = await gw.request("GET", V2 + "/vnf_packages")
    assert missing.status_code == 400 and missing.json()["details"]["header"] == "Version"
    other = await call(gw, contract, "GET", "/vnf_packages", Version="1.0.0")
    assert other.status_code == 406
    xml = await call(gw, contract, "GET", "/vnf_packages", Accept="application/xml")
    assert xml.status_code == 406
    listed = await call(gw, contract, "GET", "/vnf_packages")
    (item,) = listed.json()
    assert item["id"] == item["vnfdId"] == "app-1.0.0"
    assert (item["onboardingState"], item["operationalState"], item["usageState"]) == (
        "ONBOARDED",
        "ENABLED",
        "NOT_IN_USE",
    )
    # A deployment makes it IN_USE on both faces.
    await gw.deploy("app-1.0.0", "web")
    got = await call(gw, contract, "GET", "/vnf_packages/app-1.0.0")
    assert got.json()["usageState"] == "IN_USE"
    # Deprecated natively → DISABLED here.
    changed = await gw.patch(
        "/o2dms/v1/nfDeploymentDescriptors/app-1.0.0", json={"state": "DEPRECATED"}
    )
    assert changed.status_code == 200
    got = await call(gw, contract, "GET", "/vnf_packages/app-1.0.0")
    assert got.json()["operationalState"] == "DISABLED"
    # The VNFD of a package whose adapter cannot describe it: one flavour, no VDU.
    vnfd = await call(gw, contract, "GET", "/vnf_packages/app-1.0.0/vnfd", Accept="text/plain")
    assert vnfd.status_code == 200, vnfd.text
    nodes = yaml.safe_load(vnfd.text)["topology_template"]["node_templates"]
    assert list(nodes) == ["VNF"] and nodes["VNF"]["properties"]["descriptor_id"] == "app-1.0.0"
    # The memory adapter keeps no archive: there is no content to build a CSAR from.
    content = await call(gw, contract, "GET", "/vnf_packages/app-1.0.0/package_content")
    assert content.status_code == 404
    unknown = await call(gw, contract, "GET", "/vnf_packages/nope")
    assert unknown.status_code == 404


async def test_filters_selectors_and_paging(gw: Gateway, contract: ContractValidator) -> None:
    for i in range(105):
        created = await call(gw, contract, "POST", "/vnf_packages", {"userDefinedData": {"n": i}})
        assert created.status_code == 201
    first = await call(gw, contract, "GET", "/vnf_packages")
    assert len(first.json()) == 100 and 'rel="next"' in first.headers["link"]
    assert all("userDefinedData" not in p for p in first.json())  # excluded by default
    url = first.headers["link"].split(">")[0].lstrip("<")
    rest = await gw.request("GET", url, headers=HEADERS)
    assert len(rest.json()) == 5 and "link" not in rest.headers
    ids = {p["id"] for p in first.json()} | {p["id"] for p in rest.json()}
    assert len(ids) == 105
    filtered = await call(
        gw, contract, "GET", "/vnf_packages", params={"filter": "(eq,userDefinedData/n,7)",
                                                      "all_fields": ""},
    )  # fmt: skip
    assert [p["userDefinedData"] for p in filtered.json()] == [{"n": 7}]
    bad = await call(gw, contract, "GET", "/vnf_packages", params={"filter": "(eq,nope,1)"})
    assert bad.status_code == 400
    marker = await call(
        gw, contract, "GET", "/vnf_packages", params={"nextpage_opaque_marker": "garbage"}
    )
    assert marker.status_code == 400
    mandatory = await call(
        gw, contract, "GET", "/vnf_packages", params={"exclude_fields": "onboardingState"}
    )
    assert mandatory.status_code == 400


async def test_states_patch_etag_and_delete(
    gw: Gateway, contract: ContractValidator, tmp_path: Path
) -> None:
    created = await call(gw, contract, "POST", "/vnf_packages", {"userDefinedData": {"a": 1}})
    pkg = created.json()["id"]
    # Before onboarding: no enabling, no content, no VNFD.
    early = await call(
        gw, contract, "PATCH", f"/vnf_packages/{pkg}", {"operationalState": "ENABLED"}
    )
    assert early.status_code == 409
    assert (await call(gw, contract, "GET", f"/vnf_packages/{pkg}/vnfd")).status_code == 409
    # userDefinedData merges; a null deletes its key.
    merged = await call(
        gw, contract, "PATCH", f"/vnf_packages/{pkg}", {"userDefinedData": {"b": 2, "a": None}}
    )
    assert merged.status_code == 200, merged.text
    got = await call(gw, contract, "GET", f"/vnf_packages/{pkg}", params={"all_fields": ""})
    assert got.json()["userDefinedData"] == {"b": 2}
    # Content: a CSAR onboards into the memory adapter as a native package (id = vnfdId).
    csar = build_csar(
        tmp_path / "p.csar", vnfd=vnfd_document("vnfd-42"), chart=chart_bytes(tmp_path)
    )
    # 415 for another media type (SOL013; the published SOL005 OpenAPI lists no 415 here).
    wrong_type = await gw.request(
        "PUT",
        f"{V2}/vnf_packages/{pkg}/package_content",
        content=b"x",
        headers={**HEADERS, "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    put = await call(
        gw, contract, "PUT", f"/vnf_packages/{pkg}/package_content", content=csar.read_bytes(),
        **{"Content-Type": "application/zip"},
    )  # fmt: skip
    assert put.status_code == 202, put.text
    again = await call(
        gw, contract, "PUT", f"/vnf_packages/{pkg}/package_content", content=csar.read_bytes(),
        **{"Content-Type": "application/zip"},
    )  # fmt: skip
    assert again.status_code == 409  # ONBOARDED takes no more content
    native = await gw.get("/o2dms/v1/nfDeploymentDescriptors/vnfd-42")
    assert native.status_code == 200 and native.json()["name"] == "web"
    got = await call(gw, contract, "GET", f"/vnf_packages/{pkg}")
    assert got.json()["vnfdId"] == "vnfd-42" and got.json()["operationalState"] == "ENABLED"
    vnfd = await call(gw, contract, "GET", f"/vnf_packages/{pkg}/vnfd", Accept="text/plain")
    assert yaml.safe_load(vnfd.text)["topology_template"]["node_templates"]["VNF"]
    # ENABLED: no delete. A stale If-Match: 412 and nothing changed.
    assert (await call(gw, contract, "DELETE", f"/vnf_packages/{pkg}")).status_code == 409
    stale = await gw.request(
        "PATCH", f"{V2}/vnf_packages/{pkg}", json={"operationalState": "DISABLED"},
        headers={**HEADERS, "If-Match": '"0"'},
    )  # fmt: skip
    assert stale.status_code == 412
    assert (await gw.get("/o2dms/v1/nfDeploymentDescriptors/vnfd-42")).json()["state"] == (
        "AVAILABLE"
    )
    disabled = await call(
        gw, contract, "PATCH", f"/vnf_packages/{pkg}", {"operationalState": "DISABLED"},
        **{"If-Match": got.headers["ETag"]},
    )  # fmt: skip
    assert disabled.status_code == 200
    assert (await gw.get("/o2dms/v1/nfDeploymentDescriptors/vnfd-42")).json()["state"] == (
        "DEPRECATED"
    )
    twice = await call(
        gw, contract, "PATCH", f"/vnf_packages/{pkg}", {"operationalState": "DISABLED"}
    )
    assert twice.status_code == 409
    deleted = await call(gw, contract, "DELETE", f"/vnf_packages/{pkg}")
    assert deleted.status_code == 204
    assert (await gw.get("/o2dms/v1/nfDeploymentDescriptors/vnfd-42")).status_code == 404
    assert (await call(gw, contract, "GET", f"/vnf_packages/{pkg}")).status_code == 404


@pytest.mark.parametrize("blob", [0, 256 * 1024], ids=["small-chart", "chart-most-of-it"])
async def test_the_package_checksum_is_the_csars_own(
    gw: Gateway, contract: ContractValidator, tmp_path: Path, blob: int
) -> None:
    """The VNF package's checksum is the SHA-256 of the CSAR as uploaded (not its chart's),
    whether it is read before the adapter is called or while it checks the chart (when the
    chart is most of the CSAR)."""
    import hashlib
    import io
    import tarfile

    chart = tmp_path / "web-1.0.0.tgz"
    with tarfile.open(chart, "w:gz") as tar:
        for name, data in (
            ("web/Chart.yaml", b"apiVersion: v2\nname: web\nversion: 1.0.0\n"),
            ("web/files/blob.bin", os.urandom(blob)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    csar = build_csar(tmp_path / "p.csar", vnfd=vnfd_document(f"vnfd-{blob}"), chart=chart)
    assert (2 * chart.stat().st_size >= csar.stat().st_size) == bool(blob)
    pkg = (await call(gw, contract, "POST", "/vnf_packages", {})).json()["id"]
    put = await call(
        gw, contract, "PUT", f"/vnf_packages/{pkg}/package_content", content=csar.read_bytes(),
        **{"Content-Type": "application/zip"},
    )  # fmt: skip
    assert put.status_code == 202, put.text
    got = (await call(gw, contract, "GET", f"/vnf_packages/{pkg}")).json()
    assert got["onboardingState"] == "ONBOARDED"
    assert got["checksum"] == {
        "algorithm": "SHA-256",
        "hash": hashlib.sha256(csar.read_bytes()).hexdigest(),
    }


async def test_upload_from_uri_goes_through_the_fetch_policy(
    gw: Gateway, contract: ContractValidator
) -> None:
    """A loopback URI is refused by the default policy: the listener never sees a request."""
    seen: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]

    def accept() -> None:
        try:
            conn, _ = server.accept()
            seen.append(conn.recv(1024))
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        pkg = (await call(gw, contract, "POST", "/vnf_packages", {})).json()["id"]
        refused = await call(
            gw,
            contract,
            "POST",
            f"/vnf_packages/{pkg}/package_content/upload_from_uri",
            {"addressInformation": f"http://127.0.0.1:{port}/p.csar"},
        )
        assert 400 <= refused.status_code < 500, refused.text
        assert refused.json()["detail"]
        got = await call(gw, contract, "GET", f"/vnf_packages/{pkg}")
        assert got.json()["onboardingState"] == "CREATED"  # nothing was fetched
    finally:
        server.close()
        thread.join(6)
    assert seen == []


async def test_the_list_pages_the_store_with_the_filter_pushed_down(
    gw: Gateway, contract: ContractValidator
) -> None:
    """250 native packages (written to the store directly: the list never asks the adapter
    for them) and 3 packages created here: pages of 100 by nextpage_opaque_marker see each
    once in order; filters on id, vnfdId, onboardingState and vnfProductName answer exactly."""
    from datetime import UTC, datetime, timedelta

    from netweave.models import PackageState
    from netweave.store.records import PackageRecord

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(250):
        await gw.store.add_package(
            PackageRecord(
                package_id=f"app{i:03d}-1.0.0", name=f"app{i:03d}", version="1.0.0",
                artifact_name=f"app{i:03d}", package_type="helm",
                state=PackageState.AVAILABLE, adapter="mem", backend_ref=f"app{i:03d}",
                created_at=t0 + timedelta(seconds=i), updated_at=t0,
            )
        )  # fmt: skip
    created = [
        (await call(gw, contract, "POST", "/vnf_packages", {})).json()["id"] for _ in range(3)
    ]
    seen: list[str] = []
    url: str | None = V2 + "/vnf_packages"
    for _ in range(5):  # bounded: 253 packages, 3 pages
        assert url is not None
        page = await gw.request("GET", url, headers=HEADERS)
        assert page.status_code == 200, page.text
        seen += [p["id"] for p in page.json()]
        link = page.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
        if url is None:
            break
    assert seen == [f"app{i:03d}-1.0.0" for i in range(250)] + created

    async def ids(expression: str, path: str = "/vnf_packages") -> list[str]:
        response = await call(gw, contract, "GET", path, params={"filter": expression})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()]

    assert await ids("(eq,vnfdId,app123-1.0.0)") == ["app123-1.0.0"]
    assert await ids(f"(eq,id,{created[1]})") == [created[1]]
    assert await ids("(eq,onboardingState,CREATED)") == created
    assert await ids("(in,vnfProductName,app007,app008)") == ["app007-1.0.0", "app008-1.0.0"]
    assert await ids("(neq,onboardingState,ONBOARDED)") == created
    # SOL003's list: onboarded packages only.
    onboarded = await gw.request(
        "GET", V2 + "/onboarded_vnf_packages", headers=HEADERS,
        params={"filter": "(cont,vnfProductName,app24)"},
    )  # fmt: skip
    assert [p["id"] for p in onboarded.json()] == [f"app{i}-1.0.0" for i in range(240, 250)]

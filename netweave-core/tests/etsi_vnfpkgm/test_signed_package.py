"""SOL004 security option 2 through ``/vnfpkgm/v2``: a zip holding the CSAR, a detached CMS
signature over the whole CSAR file and the signing certificate, all of one name. Built in the
test with a throw-away CA; the gateway trusts it through ``vnfpkgm.trustAnchorFiles``.

A verified package onboards its inner CSAR as any other, says ``packageSecurityOption:
OPTION_2`` and serves the signed zip as its content; every other is a 400 problem naming why,
with nothing stored (no native package, no file kept)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from netweave.config import Settings, VnfPkgmSettings
from netweave.errors import InvalidInput
from netweave.packaging.csar import inspect_csar
from netweave.testing.contracts import ContractValidator
from netweave.testing.vnfpkgm import (
    ThrowawayCa,
    build_csar,
    sol005_vnfpkgm_contract,
    vnfd_document,
)
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("NETWEAVE_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
V2 = "/vnfpkgm/v2"
HEADERS = {"Version": "2.4.0"}


@pytest.fixture(scope="module")
def contract() -> ContractValidator:
    if not (SHARED / "contracts/etsi").is_dir():
        pytest.fail(f"the ETSI contracts are not under {SHARED} (NETWEAVE_SHARED_DIR)")
    return sol005_vnfpkgm_contract(SHARED)


def settings_trusting(tmp_path: Path, authority: ThrowawayCa) -> Settings:
    settings = make_settings(tmp_path / "data")
    anchor = tmp_path / "anchor.pem"
    anchor.write_bytes(authority.pem())
    settings.vnfpkgm = VnfPkgmSettings(trust_anchor_files=[anchor])
    return settings


def chart(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}-1.0.0.tgz"
    data = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": "1.0.0"}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


async def upload(
    gw: Gateway, contract: ContractValidator, content: bytes
) -> tuple[str, httpx.Response]:
    created = await gw.request("POST", f"{V2}/vnf_packages", json={}, headers=HEADERS)
    pkg = str(created.json()["id"])
    path = f"/vnf_packages/{pkg}/package_content"
    put = await gw.request(
        "PUT", V2 + path, content=content, headers={**HEADERS, "Content-Type": "application/zip"}
    )
    body = put.json() if put.content else None
    contract.validate_response("PUT", path, put.status_code, body, headers=dict(put.headers))
    return pkg, put


async def package(gw: Gateway, contract: ContractValidator, pkg: str) -> dict[str, Any]:
    got = await gw.request(
        "GET", f"{V2}/vnf_packages/{pkg}", headers=HEADERS, params={"all_fields": ""}
    )
    contract.validate_response(
        "GET", f"/vnf_packages/{pkg}", got.status_code, got.json(), headers=dict(got.headers)
    )
    result: dict[str, Any] = got.json()
    return result


@pytest.fixture(scope="module")
def ca() -> ThrowawayCa:
    return ThrowawayCa()


def inner_csar(tmp_path: Path, name: str, **options: Any) -> bytes:
    path = build_csar(
        tmp_path / f"{name}-inner.csar",
        vnfd=vnfd_document(f"vnfd-{name}"),
        chart=chart(tmp_path, name),
        **options,
    )
    return path.read_bytes()


def signed_zip(entries: dict[str, bytes]) -> bytes:
    """The outer zip, its entries stored (a CSAR is compressed already)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
    return buffer.getvalue()


def option2(csar: bytes, cms: bytes, cert: bytes, stem: str = "pkg", ext: str = ".csar") -> bytes:
    return signed_zip({f"{stem}{ext}": csar, f"{stem}.cms": cms, f"{stem}.cert": cert})


async def test_a_verified_signed_package_is_onboarded_and_read_back(
    tmp_path: Path, contract: ContractValidator, ca: ThrowawayCa
) -> None:
    signer = ca.issue()
    csar = inner_csar(tmp_path, "whole")
    # The signature PEM, the signer's certificate only in the .cert file.
    package_zip = option2(csar, signer.cms(csar, embed=False), signer.pem())
    # DER signature with the certificate inside, the CSAR named .zip (SOL004 allows both).
    other = inner_csar(tmp_path, "der")
    der_zip = option2(other, signer.cms(other, pem=False), signer.pem(), "vnf-der", ".zip")
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_trusting(tmp_path, ca)
    ) as gw:
        pkg, put = await upload(gw, contract, package_zip)
        assert put.status_code == 202, put.text
        info = await package(gw, contract, pkg)
        assert info["onboardingState"] == "ONBOARDED"
        assert info["packageSecurityOption"] == "OPTION_2"
        assert info["signingCertificate"] == "pkg.cert"
        assert info["vnfdId"] == "vnfd-whole"
        native = await gw.get("/o2dms/v1/nfDeploymentDescriptors/vnfd-whole")
        assert native.status_code == 200 and native.json()["name"] == "whole"
        # The content served is the signed zip as uploaded; the VNFD, manifest and artifacts
        # are the inner CSAR's.
        content = await gw.request(
            "GET", f"{V2}/vnf_packages/{pkg}/package_content",
            headers={**HEADERS, "Accept": "application/zip"},
        )  # fmt: skip
        assert content.status_code == 200 and content.content == package_zip
        vnfd = await get(gw, contract, f"/vnf_packages/{pkg}/vnfd", Accept="text/plain")
        assert yaml.safe_load(vnfd.text)["topology_template"]["node_templates"]["VNF"]
        manifest = await get(gw, contract, f"/vnf_packages/{pkg}/manifest", Accept="text/plain")
        assert manifest.status_code == 200 and b"Source: Files/kubernetes/chart.tgz" in (
            manifest.content
        )
        chart_path = "Files/kubernetes/chart.tgz"
        artifact = await get(gw, contract, f"/vnf_packages/{pkg}/artifacts/{chart_path}")
        assert artifact.status_code == 200
        with zipfile.ZipFile(io.BytesIO(csar)) as inner:
            assert artifact.content == inner.read(chart_path)
        pkg2, put = await upload(gw, contract, der_zip)
        assert put.status_code == 202, put.text
        assert (await package(gw, contract, pkg2))["packageSecurityOption"] == "OPTION_2"
        # Deleting it removes both kept files.
        data = tmp_path / "data" / "vnf_packages"
        assert sorted(p.name for p in data.glob(f"{pkg}.*")) == [
            f"{pkg}.csar",
            f"{pkg}.signed.zip",
        ]
        await gw.request(
            "PATCH", f"{V2}/vnf_packages/{pkg}", json={"operationalState": "DISABLED"},
            headers=HEADERS,
        )  # fmt: skip
        deleted = await gw.request("DELETE", f"{V2}/vnf_packages/{pkg}", headers=HEADERS)
        assert deleted.status_code == 204, deleted.text
        assert list(data.glob(f"{pkg}.*")) == []


async def get(
    gw: Gateway, contract: ContractValidator, path: str, **headers: str
) -> httpx.Response:
    response = await gw.request("GET", V2 + path, headers={**HEADERS, **headers})
    if "json" in response.headers.get("content-type", ""):
        contract.validate_response(
            "GET", path, response.status_code, response.json(), headers=dict(response.headers)
        )
    return response


async def test_signed_packages_that_cannot_be_trusted_or_are_malformed_are_refused(
    tmp_path: Path, contract: ContractValidator, ca: ThrowawayCa
) -> None:
    signer = ca.issue()
    stranger = ThrowawayCa("someone else").issue()
    csar = inner_csar(tmp_path, "bad")
    cms, cert = signer.cms(csar), signer.pem()
    # A CSAR whose own archive is hostile (zip slip), properly signed.
    slip = inner_csar(tmp_path, "bad", raw_entries={"../escape.txt": b"x"})
    # The CSAR changed after it was signed: a file added (a valid CSAR, its manifest updated).
    tampered = inner_csar(tmp_path, "bad", extra={"Files/added.txt": b"added later"})
    assert tampered != csar
    cases: list[tuple[str, bytes, str]] = [
        ("tampered", option2(tampered, cms, cert), "other content"),
        ("untrusted", option2(csar, stranger.cms(csar), stranger.pem()), "not trusted"),
        ("nocms", signed_zip({"pkg.csar": csar, "pkg.cert": cert}), "no signature file 'pkg.cms'"),
        ("nocert", signed_zip({"pkg.csar": csar, "pkg.cms": cms}), "no certificate file"),
        (
            "mismatch",
            signed_zip({"pkg.csar": csar, "other.cms": cms, "pkg.cert": cert}),
            "share one name",
        ),
        (
            "extra",
            signed_zip({"pkg.csar": csar, "pkg.cms": cms, "pkg.cert": cert, "README": b"hi"}),
            "'README'",
        ),
        (
            "outerslip",
            signed_zip({"pkg.csar": csar, "pkg.cms": cms, "pkg.cert": cert, "../pkg.cms": cms}),
            "zip slip",
        ),
        ("innerslip", option2(slip, signer.cms(slip), cert), "zip slip"),
        (
            "twocsars",
            signed_zip({"a.csar": csar, "b.csar": csar, "a.cms": cms, "a.cert": cert}),
            "exactly one CSAR",
        ),
        (
            "nested",
            option2(
                (inner := option2(csar, cms, cert, "in")), signer.cms(inner), cert, "out", ".zip"
            ),
            "itself a signed package",
        ),
    ]
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_trusting(tmp_path, ca)
    ) as gw:
        for name, content, why in cases:
            pkg, put = await upload(gw, contract, content)
            assert put.status_code == 400, (name, put.text)
            assert put.headers["content-type"].startswith("application/problem+json")
            assert why in put.json()["detail"], (name, put.json()["detail"])
            info = await package(gw, contract, pkg)
            assert info["onboardingState"] == "ERROR", name
            assert "packageSecurityOption" not in info, name
        listed = await gw.get("/o2dms/v1/nfDeploymentDescriptors")
        assert listed.json()["items"] == []
        assert gw.memory.packages == {}
    # No CSAR, signed zip, chart or temporary copy left anywhere in the data directory.
    kept = [
        p.name
        for p in (tmp_path / "data").rglob("*")
        if p.is_file() and p.suffix in {".csar", ".zip", ".tgz"}
    ]
    assert kept == []


def test_inspect_streams_the_inner_csar_to_the_given_file(tmp_path: Path, ca: ThrowawayCa) -> None:
    signer = ca.issue()
    csar = inner_csar(tmp_path, "unit")
    path = tmp_path / "signed.zip"
    path.write_bytes(option2(csar, signer.cms(csar), signer.pem()))
    target = tmp_path / "inner.csar"
    info = inspect_csar(path, anchors=[ca.certificate], csar_to=target)
    assert info.security_option == "OPTION_2" and info.signed_csar == "pkg.csar"
    assert info.signer == signer.certificate.subject.rfc4514_string()
    assert target.read_bytes() == csar
    # Without an anchor the signer cannot be trusted; without the option the temporary copy
    # is made and removed.
    with pytest.raises(InvalidInput, match="no trust anchor"):
        inspect_csar(path)
    assert inspect_csar(path, anchors=[ca.certificate]).vnfd.vnfd_id == "vnfd-unit"

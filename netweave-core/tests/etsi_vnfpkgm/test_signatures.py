"""SOL004 package signatures (security option 1) through ``/vnfpkgm/v2``: CSARs signed in the
test with a throw-away CA (``netweave.testing.vnfpkgm.ThrowawayCa``, made with
``cryptography``), the gateway trusting that CA through ``vnfpkgm.trustAnchorFiles``.

A signed package whose signatures verify and chain to the anchor is onboarded and says
``packageSecurityOption: OPTION_1``; every other signed package is a 400 problem naming why,
with nothing stored: no native package, the VNF package ERROR with the same problem, and its
content accepted again later."""

from __future__ import annotations

import io
import os
import tarfile
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
    Signer,
    ThrowawayCa,
    build_csar,
    sol005_vnfpkgm_contract,
    vnfd_document,
)
from pydantic import ValidationError
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


@pytest.fixture(scope="module")
def ca() -> ThrowawayCa:
    return ThrowawayCa()


def settings_trusting(tmp_path: Path, *cas: ThrowawayCa) -> Settings:
    settings = make_settings(tmp_path / "data")
    files = []
    for index, authority in enumerate(cas):
        path = tmp_path / f"anchor-{index}.pem"
        path.write_bytes(authority.pem())
        files.append(path)
    settings.vnfpkgm = VnfPkgmSettings(trust_anchor_files=files)
    return settings


def chart(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}-1.0.0.tgz"
    data = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": "1.0.0"}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def csar(tmp_path: Path, name: str, **options: Any) -> bytes:
    path = build_csar(
        tmp_path / f"{name}.csar",
        vnfd=vnfd_document(f"vnfd-{name}"),
        chart=chart(tmp_path, name),
        **options,
    )
    return path.read_bytes()


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


async def test_signed_packages_that_verify_are_onboarded(
    tmp_path: Path, contract: ContractValidator, ca: ThrowawayCa
) -> None:
    signer = ca.issue()
    cases = {
        # The manifest signed, the signer's certificate inside the CMS.
        "embedded": {"sign_manifest": signer.cms},
        # The certificate as the package's file (ETSI-Entry-Certificate), the chart signed too.
        "certfile": {
            "sign_manifest": lambda data: signer.cms(data, embed=False),
            "sign_chart": lambda data: signer.cms(data, embed=False, pem=False),
            "certificate": signer.pem(),
        },
        # Manifest-only layout, its certificate beside the entry (vnfd.cert).
        "flat": {
            "layout": "manifest-only",
            "sign_manifest": lambda data: signer.cms(data, embed=False),
            "certificate": signer.pem(),
        },
    }
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_trusting(tmp_path, ca)
    ) as gw:
        for name, options in cases.items():
            pkg, put = await upload(gw, contract, csar(tmp_path, name, **options))
            assert put.status_code == 202, (name, put.text)
            info = await package(gw, contract, pkg)
            assert info["onboardingState"] == "ONBOARDED", name
            assert info["packageSecurityOption"] == "OPTION_1", name
            native = await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/vnfd-{name}")
            assert native.status_code == 200, name
            if "certificate" in options:
                assert info["signingCertificate"].endswith(".cert"), name
            else:
                assert "signingCertificate" not in info
        # An unsigned package still onboards (signatures are checked when present).
        pkg, put = await upload(gw, contract, csar(tmp_path, "plain"))
        assert put.status_code == 202, put.text
        assert "packageSecurityOption" not in await package(gw, contract, pkg)


def _other_key(signer: Signer) -> Signer:
    """The signer's certificate with another key: its signatures do not verify."""
    return Signer(signer.certificate, ThrowawayCa().key)


async def test_signatures_that_do_not_verify_or_chain_are_refused_and_nothing_is_stored(
    tmp_path: Path, contract: ContractValidator, ca: ThrowawayCa
) -> None:
    signer = ca.issue()
    stranger = ThrowawayCa("someone else").issue()
    expired = ca.issue("expired signer", expired=True)
    no_signing = ca.issue("encryption only", signing=False)
    wrong_key = _other_key(signer)

    def tampered(data: bytes) -> bytes:
        # Signed, then the manifest changed before the signature was appended.
        return signer.cms(data.replace(b"example-cnf", b"signed-cnf"))

    cases: list[tuple[str, dict[str, Any], str]] = [
        ("untrusted", {"sign_manifest": stranger.cms}, "not trusted"),
        ("tampered", {"sign_manifest": tampered}, "other content"),
        ("wrongkey", {"sign_manifest": wrong_key.cms}, "does not verify"),
        ("expired", {"sign_manifest": expired.cms}, "not trusted"),
        ("nosigning", {"sign_manifest": no_signing.cms}, "digitalSignature"),
        (
            "chart",
            {"sign_manifest": signer.cms, "sign_chart": lambda data: signer.cms(data + b"x")},
            "Files/kubernetes/chart.tgz",
        ),
        (
            "nocert",
            {"sign_manifest": lambda data: signer.cms(data, embed=False)},
            "signer's certificate",
        ),
        ("certonly", {"certificate": signer.pem()}, "nothing signed"),
        (
            "garbage",
            {"sign_manifest": lambda _data: b"-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n"},
            "CMS",
        ),
    ]
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], settings=settings_trusting(tmp_path, ca)
    ) as gw:
        for name, options, why in cases:
            pkg, put = await upload(gw, contract, csar(tmp_path, name, **options))
            assert put.status_code == 400, (name, put.text)
            problem = put.json()
            assert put.headers["content-type"].startswith("application/problem+json")
            assert why in problem["detail"], (name, problem["detail"])
            info = await package(gw, contract, pkg)
            assert info["onboardingState"] == "ERROR", name
            assert why in info["onboardingFailureDetails"]["detail"], name
            native = await gw.get(f"/o2dms/v1/nfDeploymentDescriptors/vnfd-{name}")
            assert native.status_code == 404, name
        listed = await gw.get("/o2dms/v1/nfDeploymentDescriptors")
        assert listed.json()["items"] == []
        assert gw.memory.packages == {}
        stored = sorted(p.name for p in (tmp_path / "data" / "vnf_packages").glob("*.csar"))
        assert stored == []
        # The same package, signed properly, is then accepted into the ERROR one.
        put = await gw.request(
            "PUT", f"{V2}/vnf_packages/{pkg}/package_content",
            content=csar(tmp_path, "garbage", sign_manifest=signer.cms),
            headers={**HEADERS, "Content-Type": "application/zip"},
        )  # fmt: skip
        assert put.status_code == 202, put.text


async def test_without_a_trust_anchor_a_signed_package_is_refused(
    tmp_path: Path, contract: ContractValidator, ca: ThrowawayCa
) -> None:
    async with running_gateway(tmp_path, adapters=[MemoryAdapter("mem")]) as gw:
        _, put = await upload(gw, contract, csar(tmp_path, "a", sign_manifest=ca.issue().cms))
        assert put.status_code == 400, put.text
        assert "no trust anchor is configured" in put.json()["detail"]
        assert (await gw.get("/o2dms/v1/nfDeploymentDescriptors/vnfd-a")).status_code == 404


def test_a_trust_anchor_file_that_is_not_pem_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ValidationError, match="trustAnchorFiles"):
        VnfPkgmSettings(trust_anchor_files=[bad])
    with pytest.raises(ValidationError, match="trustAnchorFiles"):
        VnfPkgmSettings(trust_anchor_files=[tmp_path / "missing.pem"])


def test_rsa_signers_and_certificates_without_key_usage_verify(
    tmp_path: Path, ca: ThrowawayCa
) -> None:
    """RSA (PKCS#1 v1.5) as well as ECDSA; a signer certificate without the key usage
    extension is not refused for lacking it (RFC 5280 does not require it)."""
    for name, signer in (
        ("rsa", ca.issue(rsa_key=True)),
        ("nokeyusage", ca.issue(key_usage=False)),
    ):
        path = tmp_path / f"{name}.csar"
        path.write_bytes(csar(tmp_path, name, sign_manifest=signer.cms, sign_chart=signer.cms))
        info = inspect_csar(path, anchors=[ca.certificate])
        assert info.signed and info.signer == signer.certificate.subject.rfc4514_string()
        with pytest.raises(InvalidInput, match="not trusted"):
            inspect_csar(path, anchors=[ThrowawayCa("other").certificate])

"""TLS to argocd-server: the configured CA is trusted, an unknown one is refused."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from argo_emulator import ArgoEmulator, Served
from conftest import make_config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from netweave.errors import BackendUnavailable
from netweave_argocd.adapter import ArgoCDAdapter


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server-key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("netweave test CA"))
        .issuer_name(_name("netweave test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("argocd-server"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def https_argo(tmp_path: Path) -> Iterator[tuple[ArgoEmulator, Path]]:
    ca, cert, key = make_pki(tmp_path)
    emulator = ArgoEmulator()
    served = Served(emulator, tls=(cert, key))
    served.start()
    try:
        yield emulator, ca
    finally:
        served.stop()
    assert emulator.violations == []


async def test_configured_ca_is_trusted(https_argo: tuple[ArgoEmulator, Path]) -> None:
    argo, ca = https_argo
    assert argo.url.startswith("https://127.0.0.1:")
    adapter = ArgoCDAdapter("argo", make_config(argo, http={"tls": {"caFile": str(ca)}}))
    try:
        health = await adapter.health()
        assert health.healthy, health.message
    finally:
        await adapter.stop()


async def test_unknown_ca_is_refused_as_unavailable(https_argo: tuple[ArgoEmulator, Path]) -> None:
    argo, _ = https_argo
    adapter = ArgoCDAdapter("argo", make_config(argo, http={"retries": 0}))
    try:
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await adapter.get_deployment("argocd/web")
        assert argo.requests == []  # the handshake failed: nothing reached the API
    finally:
        await adapter.stop()


async def test_verification_can_be_switched_off(https_argo: tuple[ArgoEmulator, Path]) -> None:
    argo, _ = https_argo
    adapter = ArgoCDAdapter("argo", make_config(argo, http={"tls": {"verify": False}}))
    try:
        assert (await adapter.health()).healthy
    finally:
        await adapter.stop()

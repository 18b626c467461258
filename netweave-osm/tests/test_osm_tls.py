"""TLS to the NBI: the adapter verifies the server against the configured CA."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from netweave.errors import BackendUnavailable
from netweave_osm import OsmAdapter
from osm_emulator import OsmNbiEmulator
from osm_helpers import make_config


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osm-nbi.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "nbi.pem", tmp / "nbi.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_emulator(contract_path: Path, tmp_path: Path) -> Iterator[tuple[OsmNbiEmulator, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    nbi = OsmNbiEmulator(contract_path)
    nbi.start(tls=context)
    try:
        yield nbi, cert
    finally:
        nbi.stop()
    assert nbi.violations == []


async def test_https_with_the_configured_ca(tls_emulator: tuple[OsmNbiEmulator, Path]) -> None:
    nbi, cert = tls_emulator
    assert nbi.url.startswith("https://127.0.0.1:")
    trusted = OsmAdapter("osm-tls", make_config(nbi, http={"tls": {"caFile": str(cert)}}))
    await trusted.start()
    try:
        assert (await trusted.health()).healthy
        assert await trusted.list_packages() == []
    finally:
        await trusted.stop()
    # Without the CA the server is not trusted: the NBI counts as unreachable.
    served = len(nbi.log)
    untrusted = OsmAdapter("osm-notls", make_config(nbi, http={"retries": 0}))
    await untrusted.start()
    try:
        with pytest.raises(BackendUnavailable):
            await untrusted.list_packages()
    finally:
        await untrusted.stop()
    assert len(nbi.log) == served, "no request (not even the login) got through"

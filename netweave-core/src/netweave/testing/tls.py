"""A throw-away PKI for TLS tests on loopback: a CA, a server certificate for 127.0.0.1 and
client certificates, written as PEM files (the form every backend client and uvicorn take)::

    pki = make_pki(tmp_path, clients=["smo"])
    context.load_cert_chain(pki.server_cert, pki.server_key)
    adapter_config = {"tls": {"caFile": str(pki.ca)}}

Needs ``cryptography`` (in the ``testing`` extra). Keys are P-256, valid for one hour.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CA_NAME = "netweave test CA"


@dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`make_pki` wrote in ``directory``."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def client(self, name: str) -> tuple[Path, Path]:
        """(certificate, key) of a client made with ``clients=[name]`` or ``rogue=name``."""
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"


def make_pki(directory: Path, *, clients: Iterable[str] = (), rogue: str | None = None) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and ``localhost`` signed by it, a client
    certificate per name in ``clients`` signed by it, and, with ``rogue``, a self-signed client
    certificate the CA never issued (for refusal tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(_CA_NAME, ca_key, None, ca=True)
    _write(directory / "ca", ca_cert, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    _write(
        directory / "server",
        _certificate("127.0.0.1", server_key, (_CA_NAME, ca_key), server=True),
        server_key,
    )
    for name in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        _write(directory / name, _certificate(name, key, (_CA_NAME, ca_key)), key)
    if rogue is not None:
        key = ec.generate_private_key(ec.SECP256R1())
        _write(directory / rogue, _certificate(rogue, key, None), key)
    return Pki(directory)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    """Self-signed when ``issuer`` is None."""
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(stem: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    stem.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    stem.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    stem.with_suffix(".key").chmod(0o600)


__all__ = ["Pki", "make_pki"]

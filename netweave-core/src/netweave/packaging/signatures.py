"""SOL004 package signatures: CMS (PKCS#7) ``SignedData`` verified against configured trust
anchors, with the ``cryptography`` package.

``cryptography`` signs CMS but does not verify it, so the ``SignedData`` structure is read here
(RFC 5652, DER only: a bounded reader of the few fields needed, no general ASN.1), and
``cryptography`` does the rest: the certificates, the signature primitive (RSA PKCS#1 v1.5,
ECDSA) and the path validation to a trust anchor (``x509.verification``, with the
signer's key usage and the validity period at the current time checked, the extended key usage
left to the issuer's policy: a code-signing certificate has none for TLS).

A signature is checked over a *digest* of the signed content (the caller streams the content
once, whatever its size): with signed attributes, the ``messageDigest`` attribute must equal it
and the signature covers the attributes; without them the signature covers the content itself,
which RSA and ECDSA verify from its digest (``Prehashed``). Other key types (Ed25519, which
``cryptography`` cannot put in a CMS either) are refused.

Every refusal is a :class:`SignatureInvalid` naming why (400 for the client: the package it
sent is what is wrong).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509 import verification

from netweave.errors import InvalidInput

_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"
#: Digest algorithm OID → (hashlib name, cryptography hash).
DIGESTS: Final[dict[str, tuple[str, type[hashes.HashAlgorithm]]]] = {
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
}
_RSA_PSS: Final = "1.2.840.113549.1.1.10"
_PEM_BEGIN: Final = b"-----BEGIN CMS-----"
_PEM_END: Final = b"-----END CMS-----"
#: Bound on a signature file (a CMS with its certificates is a few kilobytes).
MAX_SIGNATURE_BYTES: Final = 1 << 20


class SignatureInvalid(InvalidInput):
    """A package signature that cannot be trusted; the message says why."""

    code = "PackageSignatureInvalid"
    title = "Package signature invalid"


def _refuse(message: str, **details: object) -> SignatureInvalid:
    return SignatureInvalid(message, details={"field": "package", **details})


# -- a bounded DER reader ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tlv:
    tag: int
    #: The whole element (tag, length and value) and its value, as slices of the input.
    raw: bytes
    value: bytes


def _read(data: bytes, pos: int = 0) -> tuple[_Tlv, int]:
    if pos + 2 > len(data):
        raise _refuse("the CMS signature is truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _refuse("the CMS signature uses a high tag number (not DER CMS)")
    length = data[pos + 1]
    head = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0:
            raise _refuse("the CMS signature uses indefinite lengths (BER): DER is required")
        if count > 4 or pos + 2 + count > len(data):
            raise _refuse("the CMS signature has an invalid length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
        head += count
    end = pos + head + length
    if end > len(data):
        raise _refuse("the CMS signature is truncated")
    return _Tlv(tag, data[pos:end], data[pos + head : end]), end


def _children(value: bytes) -> list[_Tlv]:
    items: list[_Tlv] = []
    pos = 0
    while pos < len(value):
        item, pos = _read(value, pos)
        items.append(item)
        if len(items) > 10_000:
            raise _refuse("the CMS signature has too many elements")
    return items


def _oid(tlv: _Tlv) -> str:
    if tlv.tag != 0x06 or not tlv.value:
        raise _refuse("the CMS signature has a malformed object identifier")
    data = tlv.value
    first = data[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in data[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _expect(tlv: _Tlv, tag: int, what: str) -> _Tlv:
    if tlv.tag != tag:
        raise _refuse(f"the CMS signature is malformed ({what})")
    return tlv


# -- CMS SignedData ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignerInfo:
    digest_oid: str
    signature_oid: str
    signature: bytes
    #: The DER of the signed attributes re-tagged as a SET (what was signed), if any.
    signed_attributes: bytes | None
    message_digest: bytes | None
    #: (issuer DER, serial) or a subject key identifier.
    issuer_serial: tuple[bytes, int] | None
    key_id: bytes | None


@dataclass(frozen=True, slots=True)
class SignedData:
    certificates: list[x509.Certificate]
    signers: list[SignerInfo]


def load_cms(data: bytes) -> SignedData:
    """A CMS ``SignedData`` from DER, or PEM (``-----BEGIN CMS-----``/``PKCS7``)."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise _refuse(f"the CMS signature is over {MAX_SIGNATURE_BYTES} bytes")
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        lines = [line.strip() for line in stripped.splitlines()]
        body = b"".join(line for line in lines[1:] if not line.startswith(b"-----"))
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError:
            raise _refuse("the PEM CMS signature is not base64") from None
    content_info, end = _read(data)
    if end != len(data):
        raise _refuse("the CMS signature has data after its end")
    parts = _children(_expect(content_info, 0x30, "ContentInfo").value)
    if len(parts) != 2 or _oid(parts[0]) != _SIGNED_DATA:
        raise _refuse("the CMS structure is not SignedData")
    (signed,) = _children(_expect(parts[1], 0xA0, "content").value)
    fields = _children(_expect(signed, 0x30, "SignedData").value)
    certificates: list[x509.Certificate] = []
    signers: list[SignerInfo] = []
    for item in fields[3:]:
        if item.tag == 0xA0:  # certificates [0] IMPLICIT SET OF CertificateChoices
            for cert in _children(item.value):
                if cert.tag == 0x30:
                    try:
                        certificates.append(x509.load_der_x509_certificate(cert.raw))
                    except ValueError:
                        raise _refuse("a certificate in the CMS signature is malformed") from None
        elif item.tag == 0x31:  # signerInfos
            signers = [_signer(s) for s in _children(item.value)]
    if not signers:
        raise _refuse("the CMS signature has no signer")
    return SignedData(certificates, signers)


def _signer(tlv: _Tlv) -> SignerInfo:
    fields = _children(_expect(tlv, 0x30, "SignerInfo").value)
    if len(fields) < 5:
        raise _refuse("the CMS signature's SignerInfo is incomplete")
    sid = fields[1]
    issuer_serial: tuple[bytes, int] | None = None
    key_id: bytes | None = None
    if sid.tag == 0x30:
        issuer, serial = _children(sid.value)[:2]
        issuer_serial = (issuer.raw, int.from_bytes(serial.value, "big", signed=True))
    elif sid.tag == 0x80:
        key_id = sid.value
    else:
        raise _refuse("the CMS signature's signer identifier is malformed")
    digest_oid = _oid(_children(_expect(fields[2], 0x30, "digestAlgorithm").value)[0])
    index = 3
    signed_attributes: bytes | None = None
    message_digest: bytes | None = None
    if fields[index].tag == 0xA0:
        attributes = fields[index]
        signed_attributes = b"\x31" + attributes.raw[1:]
        for attribute in _children(attributes.value):
            kind, values = _children(_expect(attribute, 0x30, "attribute").value)[:2]
            if _oid(kind) == _MESSAGE_DIGEST:
                (value,) = _children(values.value)[:1]
                message_digest = _expect(value, 0x04, "messageDigest").value
        index += 1
        if message_digest is None:
            raise _refuse("the CMS signature's signed attributes have no messageDigest")
    signature_oid = _oid(_children(_expect(fields[index], 0x30, "signatureAlgorithm").value)[0])
    signature = _expect(fields[index + 1], 0x04, "signature").value
    return SignerInfo(
        digest_oid,
        signature_oid,
        signature,
        signed_attributes,
        message_digest,
        issuer_serial,
        key_id,
    )


# -- verification --------------------------------------------------------------------------------


def load_trust_anchors(files: Iterable[Path]) -> list[x509.Certificate]:
    """The CA certificates of PEM files (each may hold several)."""
    anchors: list[x509.Certificate] = []
    for path in files:
        try:
            anchors.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise ValueError(f"trust anchor file {path}: {exc}") from None
    return anchors


def load_certificates(data: bytes, where: str) -> list[x509.Certificate]:
    """Certificates in a package file: PEM (one or more) or one DER."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise _refuse(f"{where} holds no readable X.509 certificate", entry=where) from None


def _signer_certificate(
    signer: SignerInfo, candidates: Sequence[x509.Certificate]
) -> x509.Certificate:
    for cert in candidates:
        if signer.issuer_serial is not None:
            issuer, serial = signer.issuer_serial
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
                return cert
        elif signer.key_id is not None:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == signer.key_id:
                return cert
    raise _refuse(
        "the signer's certificate is neither in the CMS signature nor in the package's "
        "certificate file"
    )


def _verify_primitive(
    cert: x509.Certificate, signer: SignerInfo, data: bytes | None, digest: bytes | None
) -> None:
    """``data``: what was signed (the signed attributes), or None with ``digest`` (the
    content's, prehashed)."""
    _name, algorithm = DIGESTS[signer.digest_oid]
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if signer.signature_oid == _RSA_PSS:
                raise _refuse("RSASSA-PSS CMS signatures are not supported (PKCS#1 v1.5 are)")
            if data is not None:
                key.verify(signer.signature, data, padding.PKCS1v15(), algorithm())
            else:
                assert digest is not None
                key.verify(signer.signature, digest, padding.PKCS1v15(), Prehashed(algorithm()))
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if data is not None:
                key.verify(signer.signature, data, ec.ECDSA(algorithm()))
            else:
                assert digest is not None
                key.verify(signer.signature, digest, ec.ECDSA(Prehashed(algorithm())))
        else:
            raise _refuse(f"the signer's {type(key).__name__} key type is not supported")
    except InvalidSignature:
        raise _refuse("the CMS signature does not verify with the signer's certificate") from None
    except UnsupportedAlgorithm as exc:
        raise _refuse(f"the CMS signature's algorithm is not supported: {exc}") from None


def verify_signature(
    cms: bytes,
    digest_of: Callable[[str], bytes],
    *,
    certificates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    what: str,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """Verify the detached CMS signature ``cms`` of some content whose digest ``digest_of``
    gives for a hashlib algorithm name; ``certificates``: the package's own (besides those in
    the CMS). Every signer must verify and chain to one of ``anchors``. The (first) signer's
    certificate; :class:`SignatureInvalid` naming why not."""
    signed = load_cms(cms)
    pool = [*signed.certificates, *certificates]
    first: x509.Certificate | None = None
    for signer in signed.signers:
        if signer.digest_oid not in DIGESTS:
            raise _refuse(
                f"the signature of {what} uses the digest {signer.digest_oid} (SHA-256, SHA-384 "
                "or SHA-512 are supported)"
            )
        cert = _signer_certificate(signer, pool)
        digest = digest_of(DIGESTS[signer.digest_oid][0])
        if signer.signed_attributes is not None:
            if signer.message_digest != digest:
                raise _refuse(f"the signature of {what} was made over other content")
            _verify_primitive(cert, signer, signer.signed_attributes, None)
        else:
            _verify_primitive(cert, signer, None, digest)
        _chain(cert, [c for c in pool if c is not cert], anchors, what, now)
        first = first or cert
    assert first is not None
    return first


def _chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    what: str,
    now: datetime.datetime | None,
) -> None:
    if not anchors:
        raise _refuse(
            f"{what} is signed, and no trust anchor is configured (vnfpkgm.trustAnchorFiles): "
            "its signer cannot be trusted"
        )
    ee = verification.ExtensionPolicy.permit_all().may_be_present(
        x509.KeyUsage,
        verification.Criticality.AGNOSTIC,
        _digital_signature,
    )
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(now or datetime.datetime.now(datetime.UTC))
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee
        )
    )
    try:
        builder.build_client_verifier().verify(leaf, list(intermediates))
    except verification.VerificationError as exc:
        raise _refuse(
            f"the certificate that signed {what} ({leaf.subject.rfc4514_string()}) is not "
            f"trusted: {exc}"
        ) from None


def _digital_signature(
    _policy: verification.Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is not None and not usage.digital_signature:
        raise ValueError("its key usage does not include digitalSignature")


def split_signed_manifest(data: bytes) -> tuple[bytes, bytes | None]:
    """A manifest's signed part and its CMS signature (SOL004: at its end, PEM-encoded);
    the signed part is every byte before the ``-----BEGIN CMS-----`` line."""
    start = data.find(_PEM_BEGIN)
    if start < 0:
        return data, None
    if start > 0 and data[start - 1 : start] not in (b"\n",):
        raise _refuse("the manifest's CMS signature does not start on a line of its own")
    end = data.find(_PEM_END, start)
    if end < 0:
        raise _refuse("the manifest's CMS signature has no -----END CMS----- line")
    if data[end + len(_PEM_END) :].strip():
        raise _refuse("the manifest has content after its CMS signature")
    return data[:start], data[start : end + len(_PEM_END)]


__all__ = [
    "DIGESTS",
    "SignatureInvalid",
    "load_certificates",
    "load_cms",
    "load_trust_anchors",
    "split_signed_manifest",
    "verify_signature",
]

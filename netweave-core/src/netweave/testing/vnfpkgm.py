"""Test helpers for the SOL005 ``vnfpkgm`` face: its contract and a SOL004 CSAR builder (zip,
TOSCA-Metadata or manifest-only layout, SHA-256 manifest), used by core's and the adapters'
tests. The builder can also write hostile packages (a wrong digest, a ``..`` entry, a bomb)."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from netweave.testing.contracts import ContractValidator, relocate_definitions

VNFPKGM_V2 = Path("contracts/etsi/nfv-sol005/SOL005/VNFPackageManagement/VNFPackageManagement.yaml")
SOL003_VNFPKGM = Path(
    "contracts/etsi/nfv-sol002-sol003/SOL003/VNFPackageManagement/VNFPackageManagement.yaml"
)
SOL001_COMMON = "https://forge.etsi.org/rep/nfv/SOL001/raw/v2.6.1/etsi_nfv_sol001_common_types.yaml"
SOL001_VNFD = "https://forge.etsi.org/rep/nfv/SOL001/raw/v2.6.1/etsi_nfv_sol001_vnfd_types.yaml"


_DEFS = "definitions/SOL005VNFPackageManagement_def.yaml"
_MEDIA = "content/application~1json/schema"


def _relocate(node: Any) -> Any:
    return relocate_definitions(node, _DEFS)


def sol005_vnfpkgm_contract(shared: Path, *, strict: bool = False) -> ContractValidator:
    """The SOL005 V3.7.1 vnfpkgm v2 contract under ``shared`` (the shared directory), with one
    defect of the published OpenAPI corrected: ``VnfPkgInfo.compatibleSpecificationVersions``
    is declared as one ``Version`` string, while SOL005 V3.7.1 Table 9.5.2.5-1 gives it
    cardinality 0..N ("Each entry shall be formatted as …"): an array of versions here."""
    main = shared / VNFPKGM_V2
    definitions = yaml.safe_load((main.parent / _DEFS).read_text(encoding="utf-8"))
    info = copy.deepcopy(definitions["definitions"]["VnfPkgInfo"])
    versions = info["properties"]["compatibleSpecificationVersions"]
    info["properties"]["compatibleSpecificationVersions"] = {
        "type": "array",
        "items": {"$ref": versions["$ref"]},
    }
    info = _relocate(info)
    responses = "#/components/responses"
    request, subscription = _subscription_schemas(definitions["definitions"])
    overrides = {
        f"{responses}/VnfPackages.Get.200/{_MEDIA}": {"type": "array", "items": info},
        f"{responses}/VnfPackages.Post.201/{_MEDIA}": info,
        f"{responses}/IndividualVnfPackage.Get.200/{_MEDIA}": info,
        f"#/components/requestBodies/VnfPkgSubscriptionRequest/{_MEDIA}": request,
        f"{responses}/VnfPkgSubscriptions.Post.201/{_MEDIA}": subscription,
        f"{responses}/VnfPkgSubscriptions.Get.200/{_MEDIA}": {
            "type": "array",
            "items": subscription,
        },
        f"{responses}/VnfPkgSubscription.Get.200/{_MEDIA}": subscription,
    }
    return ContractValidator.from_file(main, strict=strict, overrides=overrides)


def _subscription_schemas(definitions: Mapping[str, Any]) -> tuple[Any, Any]:
    """``PkgmSubscriptionRequest`` and ``PkgmSubscription`` with two defects of the published
    ``PkgmNotificationsFilter`` corrected (SOL005 V3.7.1 Table 9.5.3.2-1): ``notificationTypes``
    is declared as one string, while the table gives it cardinality 0..N (an array, as SOL003's
    own copy of the type declares it); and a ``oneOf`` requires exactly one of
    ``vnfProductsFromProviders``/``vnfdId``/``vnfPkgId``, while each is 0..N and note 2 only
    says they should not be used together (a filter by notification type alone, or no
    selector, is valid): here at most one of them."""
    selectors = ("vnfProductsFromProviders", "vnfdId", "vnfPkgId")
    flt = copy.deepcopy(definitions["PkgmNotificationsFilter"])
    flt.pop("oneOf", None)
    types = flt["properties"]["notificationTypes"]
    flt["properties"]["notificationTypes"] = {
        "type": "array",
        "items": {"type": "string", "enum": types["enum"]},
    }
    flt["not"] = {
        "anyOf": [{"required": [a, b]} for i, a in enumerate(selectors) for b in selectors[i + 1 :]]
    }
    schemas = []
    for name in ("PkgmSubscriptionRequest", "PkgmSubscription"):
        schema = copy.deepcopy(definitions[name])
        schema["properties"]["filter"] = flt
        schemas.append(_relocate(schema))
    return schemas[0], schemas[1]


#: SOL005 V3.7.1 clause 9.5.2.8 and 9.5.2.9. The published OpenAPI has no notification
#: interface for vnfpkgm (the bodies' types are absent from its definitions): written here from
#: the tables, with the types they use taken from the contract.
_NOTIFICATIONS: dict[str, dict[str, Any]] = {
    "VnfPackageOnboardingNotification": {
        "required": [
            "id", "notificationType", "subscriptionId", "timeStamp", "vnfPkgId", "vnfdId",
            "_links",
        ],
        "properties": {"notificationType": {"enum": ["VnfPackageOnboardingNotification"]}},
    },
    "VnfPackageChangeNotification": {
        "required": [
            "id", "notificationType", "subscriptionId", "timeStamp", "vnfPkgId", "vnfdId",
            "changeType", "_links",
        ],
        "properties": {
            "notificationType": {"enum": ["VnfPackageChangeNotification"]},
            "changeType": {"$ref": f"{_DEFS}#/definitions/PackageChangeType"},
            "operationalState": {"$ref": f"{_DEFS}#/definitions/PackageOperationalStateType"},
        },
    },
}  # fmt: skip


def sol005_pkgm_notification_validator(shared: Path) -> Callable[[dict[str, Any]], None]:
    """A function raising ``ContractViolation`` for a body that is not the SOL005 package
    notification its ``notificationType`` names (strictly: an attribute the standard does not
    define fails); ``operationalState`` present exactly for ``OP_STATE_CHANGE``."""
    main = (shared / VNFPKGM_V2).resolve()
    common = "../definitions/SOL005_def.yaml#/definitions/"
    definitions: dict[str, Any] = {}
    for name, spec in _NOTIFICATIONS.items():
        properties: dict[str, Any] = {
            "id": {"$ref": f"{common}Identifier"},
            "notificationType": {"type": "string", **spec["properties"]["notificationType"]},
            "subscriptionId": {"$ref": f"{common}Identifier"},
            "timeStamp": {"$ref": f"{common}DateTime"},
            "vnfPkgId": {"$ref": f"{common}Identifier"},
            "vnfdId": {"$ref": f"{common}Identifier"},
            "_links": {"$ref": f"{_DEFS}#/definitions/PkgmLinks"},
        }
        properties.update({k: v for k, v in spec["properties"].items() if k != "notificationType"})
        definitions[name] = {
            "type": "object",
            "required": spec["required"],
            "properties": properties,
        }
    document = {
        "swagger": "2.0",
        "info": {"title": "SOL005 V3.7.1 vnfpkgm notifications", "version": "2.4.0"},
        "paths": {},
        "definitions": definitions,
    }
    validator = ContractValidator(document, uri=main.as_uri(), strict=True)

    def check(body: dict[str, Any]) -> None:
        kind = str(body.get("notificationType"))
        if kind not in _NOTIFICATIONS:
            raise AssertionError(f"SOL005 defines no package notification {kind!r}")
        validator.validate_schema(kind, body)
        if kind == "VnfPackageChangeNotification":
            state_change = body.get("changeType") == "OP_STATE_CHANGE"
            if state_change != ("operationalState" in body):
                raise AssertionError(
                    "operationalState shall be present if and only if changeType is "
                    f"OP_STATE_CHANGE: {body}"
                )

    return check


def vnfd_document(
    descriptor_id: str,
    *,
    provider: str = "Example Co",
    product: str = "example-cnf",
    software_version: str = "1.0.0",
    descriptor_version: str = "1.0",
    vdu: str = "web",
    replica_key: str | None = "replicaCount",
    max_scale_level: int = 5,
    level: int = 0,
) -> dict[str, Any]:
    """A one-file SOL001 VNFD: one flavour, one container VDU, one aspect, two levels."""
    metadata = {"netweave.replicaKey": replica_key} if replica_key else {}
    return {
        "tosca_definitions_version": "tosca_simple_yaml_1_3",
        "description": f"{product} for tests",
        "imports": [SOL001_COMMON, SOL001_VNFD],
        "topology_template": {
            "node_templates": {
                "VNF": {
                    "type": "tosca.nodes.nfv.VNF",
                    "properties": {
                        "descriptor_id": descriptor_id,
                        "descriptor_version": descriptor_version,
                        "provider": provider,
                        "product_name": product,
                        "software_version": software_version,
                        "vnfm_info": ["netweave"],
                        "flavour_id": "small",
                        "flavour_description": "one web server",
                    },
                },
                vdu: {
                    "type": "tosca.nodes.nfv.Vdu.OsContainerDeployableUnit",
                    "properties": {
                        "name": vdu,
                        "description": "the web server",
                        "vdu_profile": {
                            "min_number_of_instances": 1,
                            "max_number_of_instances": 1 + max_scale_level,
                        },
                    },
                    "metadata": metadata,
                    "requirements": [{"container": f"{vdu}_container"}],
                },
                f"{vdu}_container": {
                    "type": "tosca.nodes.nfv.Vdu.OsContainer",
                    "properties": {"name": "app", "description": "the app container"},
                },
            },
            "policies": [
                {
                    "scaling_aspects": {
                        "type": "tosca.policies.nfv.ScalingAspects",
                        "properties": {
                            "aspects": {
                                "web_aspect": {
                                    "name": "web_aspect",
                                    "description": "web replicas",
                                    "max_scale_level": max_scale_level,
                                    "step_deltas": ["delta_1"],
                                }
                            }
                        },
                    }
                },
                {
                    "web_deltas": {
                        "type": "tosca.policies.nfv.VduScalingAspectDeltas",
                        "properties": {
                            "aspect": "web_aspect",
                            "deltas": {"delta_1": {"number_of_instances": 1}},
                        },
                        "targets": [vdu],
                    }
                },
                {
                    "instantiation_levels": {
                        "type": "tosca.policies.nfv.InstantiationLevels",
                        "properties": {
                            "levels": {
                                "small": {
                                    "description": "one",
                                    "scale_info": {"web_aspect": {"scale_level": 0}},
                                },
                                "large": {
                                    "description": "more",
                                    "scale_info": {"web_aspect": {"scale_level": level}},
                                },
                            },
                            "default_level": "small",
                        },
                    }
                },
            ],
        },
    }


_SOL003_DEFS = "definitions/SOL003VNFPackageManagement_def.yaml"
#: SOL003 V3.7.1 clause 4.4.1.x (as SOL005's): a checksum is {algorithm, hash}.
_CHECKSUM = {
    "type": "object",
    "required": ["algorithm", "hash"],
    "properties": {"algorithm": {"type": "string"}, "hash": {"type": "string"}},
}


def _inline(node: Any, definitions: dict[str, Any], depth: int = 0) -> Any:
    """A schema of SOL003's definitions file with its local references inlined, the broken
    ``Checksum`` replaced, and references to other files rewritten for the main document."""
    if depth > 20:
        raise ValueError("schema nesting too deep")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref.endswith("/definitions/Checksum"):
                return copy.deepcopy(_CHECKSUM)
            if ref.startswith("#/definitions/"):
                return _inline(definitions[ref.rsplit("/", 1)[1]], definitions, depth + 1)
            if ref.startswith("../"):
                return {**node, "$ref": ref[3:]}
        return {k: _inline(v, definitions, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, definitions, depth + 1) for v in node]
    return node


def sol003_vnfpkgm_contract(shared: Path, *, strict: bool = False) -> ContractValidator:
    """The SOL003 V3.7.1 vnfpkgm v2 contract (the VNFM-facing reads), with one defect of the
    published OpenAPI corrected: its ``Checksum`` ("#no definition found") is a string, while
    SOL003 (as SOL005) defines a Checksum structure {algorithm, hash}."""
    main = shared / SOL003_VNFPKGM
    definitions = yaml.safe_load((main.parent / _SOL003_DEFS).read_text(encoding="utf-8"))
    defs = definitions["definitions"]
    info = _inline(defs["VnfPkgInfo"], defs)
    responses = "#/components/responses"
    overrides = {
        f"{responses}/OnboardedVnfPackages.Get.200/{_MEDIA}": {"type": "array", "items": info},
        f"{responses}/IndividualOnboardedVnfPackage.Get.200/{_MEDIA}": info,
        f"{responses}/IndividualVnfPackage.Get.200/{_MEDIA}": info,
    }
    return ContractValidator.from_file(main, strict=strict, overrides=overrides)


def build_csar(
    target: Path,
    *,
    vnfd: Mapping[str, Any] | bytes,
    chart: Path | None = None,
    chart_name: str = "chart.tgz",
    layout: str = "tosca-metadata",
    extra: Mapping[str, bytes] | None = None,
    wrong_digest: str | None = None,
    unlisted: tuple[str, ...] = (),
    raw_entries: Mapping[str, bytes] | None = None,
    sign_manifest: Callable[[bytes], bytes] | None = None,
    sign_chart: Callable[[bytes], bytes] | None = None,
    certificate: bytes | None = None,
) -> Path:
    """Write a CSAR: the VNFD (a mapping or YAML bytes), the chart under Files/kubernetes/,
    ``extra`` files, a SHA-256 manifest listing all but ``unlisted`` (``wrong_digest``: that
    file's digest is wrong). ``raw_entries`` are added as is, unlisted (hostile names).

    SOL004 option 1: ``sign_manifest`` gives the PEM CMS appended to the manifest (over its
    bytes before it); ``sign_chart`` the chart's own CMS signature (``….sig.cms``, named by
    its manifest entry's ``Signature``); ``certificate`` the package's certificate file
    (``ETSI-Entry-Certificate``, or ``vnfd.cert`` in the manifest-only layout)."""
    definitions = "Definitions/vnfd.yaml" if layout == "tosca-metadata" else "vnfd.yaml"
    manifest_name = "vnfd.mf"
    files: dict[str, bytes] = {}
    files[definitions] = vnfd if isinstance(vnfd, bytes) else yaml.safe_dump(dict(vnfd)).encode()
    if chart is not None:
        files[f"Files/kubernetes/{chart_name}"] = chart.read_bytes()
    files.update(extra or {})
    lines = [
        "metadata:",
        "vnf_provider_id: Example Co",
        "vnf_product_name: example-cnf",
        "vnf_release_date_time: 2026-12-06T00:00:00+00:00",
        "vnf_package_version: 1.0",
        "compatible_specification_versions: 2.6.1, 4.3.1",
        "",
    ]
    signatures: dict[str, bytes] = {}
    for name, data in files.items():
        if name in unlisted:
            continue
        digest = hashlib.sha256(data).hexdigest()
        if name == wrong_digest:
            digest = hashlib.sha256(data + b"tampered").hexdigest()
        lines += [f"Source: {name}", "Algorithm: SHA-256", f"Hash: {digest}"]
        if sign_chart is not None and name.startswith("Files/kubernetes/"):
            signatures[f"{name}.sig.cms"] = sign_chart(data)
            lines.append(f"Signature: {name}.sig.cms")
        lines.append("")
    manifest = "\n".join(lines).encode()
    if sign_manifest is not None:
        manifest += sign_manifest(manifest)
    certificate_name = "Definitions/signing.cert" if layout == "tosca-metadata" else "vnfd.cert"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        if layout == "tosca-metadata":
            meta = (
                "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: tests\n"
                f"Entry-Definitions: {definitions}\nETSI-Entry-Manifest: {manifest_name}\n"
            )
            if certificate is not None:
                meta += f"ETSI-Entry-Certificate: {certificate_name}\n"
            out.writestr("TOSCA-Metadata/TOSCA.meta", meta)
        out.writestr(manifest_name, manifest)
        for name, data in {**files, **signatures}.items():
            out.writestr(name, data)
        if certificate is not None:
            out.writestr(certificate_name, certificate)
        for name, data in (raw_entries or {}).items():
            out.writestr(name, data)
    return target


@dataclass(frozen=True)
class Signer:
    """A signing certificate, its chain (leaf first, without the root) and its key."""

    certificate: x509.Certificate
    key: Any
    chain: tuple[x509.Certificate, ...] = ()

    def pem(self) -> bytes:
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (self.certificate, *self.chain)
        )

    def cms(self, data: bytes, *, embed: bool = True, pem: bool = True) -> bytes:
        """A detached CMS signature of ``data`` (with signed attributes, SHA-256); ``embed``:
        with the signer's certificate inside."""
        options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
        if not embed:
            options.append(pkcs7.PKCS7Options.NoCerts)
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
        builder = builder.add_signer(self.certificate, self.key, hashes.SHA256())
        signed = builder.sign(serialization.Encoding.DER, options)
        if not pem:
            return signed
        body = base64.encodebytes(signed).decode().replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return ("-----BEGIN CMS-----\n" + "\n".join(lines) + "\n-----END CMS-----\n").encode()


class ThrowawayCa:
    """A certificate authority made for one test (EC P-256 keys, nothing kept)."""

    def __init__(self, name: str = "netweave test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        name: str = "VNF provider signer",
        *,
        expired: bool = False,
        signing: bool = True,
        rsa_key: bool = False,
        key_usage: bool = True,
    ) -> Signer:
        """A signing certificate; ``expired``: valid only in the past; ``signing=False``:
        its key usage lacks digitalSignature; ``rsa_key``: RSA 2048 instead of EC P-256;
        ``key_usage=False``: without the extension."""
        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        now = datetime.datetime.now(datetime.UTC)
        start = now - datetime.timedelta(days=20 if expired else 1)
        end = now - datetime.timedelta(days=10) if expired else now + datetime.timedelta(days=10)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if key_usage:
            builder = builder.add_extension(
                _usage(signature=signing, key_agreement=not signing), critical=True
            )
        return Signer(builder.sign(self.key, hashes.SHA256()), key)


def _usage(
    *, signature: bool = False, cert_sign: bool = False, key_agreement: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature or cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


__all__ = [
    "Signer",
    "ThrowawayCa",
    "build_csar",
    "sol003_vnfpkgm_contract",
    "sol005_vnfpkgm_contract",
    "vnfd_document",
]

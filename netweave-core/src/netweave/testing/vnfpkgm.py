"""Test helpers for the SOL005 ``vnfpkgm`` face: its contract and a SOL004 CSAR builder (zip,
TOSCA-Metadata or manifest-only layout, SHA-256 manifest), used by core's and the adapters'
tests. The builder can also write hostile packages (a wrong digest, a ``..`` entry, a bomb)."""

from __future__ import annotations

import copy
import hashlib
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

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
) -> Path:
    """Write a CSAR: the VNFD (a mapping or YAML bytes), the chart under Files/kubernetes/,
    ``extra`` files, a SHA-256 manifest listing all but ``unlisted`` (``wrong_digest``: that
    file's digest is wrong). ``raw_entries`` are added as is, unlisted (hostile names)."""
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
    for name, data in files.items():
        if name in unlisted:
            continue
        digest = hashlib.sha256(data).hexdigest()
        if name == wrong_digest:
            digest = hashlib.sha256(data + b"tampered").hexdigest()
        lines += [f"Source: {name}", "Algorithm: SHA-256", f"Hash: {digest}", ""]
    manifest = "\n".join(lines).encode()
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        if layout == "tosca-metadata":
            out.writestr(
                "TOSCA-Metadata/TOSCA.meta",
                "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: tests\n"
                f"Entry-Definitions: {definitions}\nETSI-Entry-Manifest: {manifest_name}\n",
            )
        out.writestr(manifest_name, manifest)
        for name, data in files.items():
            out.writestr(name, data)
        for name, data in (raw_entries or {}).items():
            out.writestr(name, data)
    return target


__all__ = ["build_csar", "sol003_vnfpkgm_contract", "sol005_vnfpkgm_contract", "vnfd_document"]

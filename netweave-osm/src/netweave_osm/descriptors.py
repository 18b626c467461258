"""Reading OSM descriptors: package archives before upload and descriptor records from the NBI.

OSM stores a VNFD/NSD as the descriptor document itself plus ``_id`` and ``_admin``. Two
formats exist: SOL006 (OSM 9+: ``vnfd: {...}``, ``nsd: {nsd: [...]}``, member VNFs in
``df[].vnf-profile[]``) and the older OSM IM (``vnfd:vnfd-catalog``, ``nsd:nsd-catalog``,
``constituent-vnfd[]``). Both are read here.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from netweave.errors import InvalidInput

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
#: Descriptor files are small; anything bigger is not read while sniffing.
_MAX_DESCRIPTOR_BYTES = 4 << 20
#: Members looked at while searching an archive for its descriptor.
_MAX_MEMBERS = 10_000


@dataclass(frozen=True, slots=True)
class ArchiveFacts:
    content_type: str
    package_type: str
    descriptor_id: str | None
    md5: str
    filename: str


@dataclass(frozen=True, slots=True)
class Kdu:
    member_vnf_index: str
    vnfd_id: str
    name: str
    helm_chart: str | None
    juju_bundle: str | None

    @property
    def key(self) -> str:
        return f"{self.member_vnf_index}/{self.name}"


@dataclass(frozen=True, slots=True)
class ScalingAspect:
    member_vnf_index: str
    vnfd_id: str
    aspect_id: str
    max_scale_level: int


def _descriptor_kind(document: Any) -> tuple[str, str | None] | None:
    """(``vnfd``|``nsd``, descriptor id) when ``document`` is a VNFD or NSD."""
    if not isinstance(document, dict):
        return None
    for key, kind in (
        ("nsd", "nsd"),
        ("nsd:nsd-catalog", "nsd"),
        ("etsi-nfv-nsd:nsd", "nsd"),
        ("vnfd", "vnfd"),
        ("vnfd:vnfd-catalog", "vnfd"),
        ("etsi-nfv-vnfd:vnfd", "vnfd"),
    ):
        if key in document:
            body = unwrap(document[key], kind)
            ident = body.get("id") if body else None
            return kind, ident if isinstance(ident, str) else None
    return None


def unwrap(section: Any, kind: str) -> dict[str, Any] | None:
    """The single descriptor inside a ``vnfd``/``nsd`` section of a descriptor file."""
    if isinstance(section, dict):
        inner = section.get(kind)
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            return inner[0]
        if isinstance(inner, dict):
            return inner
        return section
    if isinstance(section, list) and section and isinstance(section[0], dict):
        return section[0]
    return None


def _yaml_members(path: Path, content_type: str) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    if content_type == "application/gzip":
        with tarfile.open(name=path, mode="r:gz") as tar:
            for index, member in enumerate(tar):
                if index >= _MAX_MEMBERS:
                    break
                if (
                    member.isfile()
                    and member.name.endswith((".yaml", ".yml"))
                    and member.size <= _MAX_DESCRIPTOR_BYTES
                ):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found.append((member.name, handle.read()))
    else:
        with zipfile.ZipFile(path) as archive:
            for index, info in enumerate(archive.infolist()):
                if index >= _MAX_MEMBERS:
                    break
                if (
                    not info.is_dir()
                    and info.filename.endswith((".yaml", ".yml"))
                    and info.file_size <= _MAX_DESCRIPTOR_BYTES
                ):
                    found.append((info.filename, archive.read(info)))
    # Descriptors sit at the top of the package directory: look there first.
    found.sort(key=lambda item: (item[0].count("/"), item[0]))
    return found


def inspect_archive(path: Path, declared_type: str | None) -> ArchiveFacts:
    """Content type, package type and MD5 of an OSM package archive (runs in a thread).

    Reads the whole file once for the checksum; descriptors are only parsed from the small
    YAML members. A corrupt archive or one without a descriptor is ``InvalidInput``.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        head = handle.read(4)
        digest.update(head)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if head.startswith(GZIP_MAGIC):
        content_type = "application/gzip"
    elif head.startswith(ZIP_MAGIC):
        content_type = "application/zip"
    else:
        raise InvalidInput(
            "an OSM package must be a .tar.gz or .zip archive", details={"field": "package"}
        )
    try:
        members = _yaml_members(path, content_type)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidInput(
            f"the package archive is corrupt ({type(exc).__name__})", details={"field": "package"}
        ) from exc
    kind: tuple[str, str | None] | None = None
    for _name, raw in members:
        try:
            kind = _descriptor_kind(yaml.safe_load(raw))
        except yaml.YAMLError:
            continue
        if kind is not None:
            break
    if kind is None:
        raise InvalidInput(
            "the archive holds no VNF or NS descriptor (a YAML file with a 'vnfd' or 'nsd' key)",
            details={"field": "package"},
        )
    if declared_type is not None and declared_type != kind[0]:
        raise InvalidInput(
            f"packageType {declared_type!r} does not match the archive's descriptor ({kind[0]})",
            details={"field": "packageType"},
        )
    suffix = ".tar.gz" if content_type == "application/gzip" else ".zip"
    filename = path.name if path.name.endswith(suffix) else f"{kind[1] or 'package'}{suffix}"
    return ArchiveFacts(content_type, kind[0], kind[1], digest.hexdigest(), filename)


# -- descriptor records as the NBI returns them ----------------------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def descriptor_name(record: dict[str, Any]) -> str:
    for key in ("product-name", "name", "id", "_id"):
        value = _str(record.get(key))
        if value:
            return value
    return "unnamed"


def descriptor_version(record: dict[str, Any]) -> str:
    value = record.get("version")
    return str(value) if value is not None else "1.0"


def member_vnfs(nsd: dict[str, Any]) -> list[tuple[str, str]]:
    """(member-vnf-index, vnfd id) of every VNF in an NSD record, in descriptor order."""
    members: list[tuple[str, str]] = []
    for df in nsd.get("df") or []:
        if not isinstance(df, dict):
            continue
        for profile in df.get("vnf-profile") or []:
            if isinstance(profile, dict):
                index, vnfd = _str(profile.get("id")), _str(profile.get("vnfd-id"))
                if index and vnfd:
                    members.append((index, vnfd))
        if members:
            return members
    for constituent in nsd.get("constituent-vnfd") or []:
        if isinstance(constituent, dict):
            index = constituent.get("member-vnf-index")
            vnfd = _str(constituent.get("vnfd-id-ref"))
            if index is not None and vnfd:
                members.append((str(index), vnfd))
    return members


def vnfd_kdus(vnfd: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """(name, helm-chart, juju-bundle) of the KDUs a VNFD declares."""
    kdus = []
    for kdu in vnfd.get("kdu") or []:
        if isinstance(kdu, dict) and _str(kdu.get("name")):
            kdus.append(
                (str(kdu["name"]), _str(kdu.get("helm-chart")), _str(kdu.get("juju-bundle")))
            )
    return kdus


def vnfd_scaling_aspects(vnfd: dict[str, Any]) -> list[tuple[str, int]]:
    """(aspect id, max-scale-level) of SOL006 ``df[].scaling-aspect`` and the older
    ``scaling-group-descriptor`` (``max-instance-count``)."""
    aspects: list[tuple[str, int]] = []
    for df in vnfd.get("df") or []:
        if isinstance(df, dict):
            for aspect in df.get("scaling-aspect") or []:
                if isinstance(aspect, dict) and _str(aspect.get("id")):
                    aspects.append((str(aspect["id"]), int(aspect.get("max-scale-level") or 1)))
    for group in vnfd.get("scaling-group-descriptor") or []:
        if isinstance(group, dict) and _str(group.get("name")):
            aspects.append((str(group["name"]), int(group.get("max-instance-count") or 1)))
    return aspects


def package_extensions(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """What a package's ``extensions`` show: descriptor id, OSM states, KDUs, members."""
    admin = record.get("_admin") if isinstance(record.get("_admin"), dict) else {}
    assert isinstance(admin, dict)
    ext: dict[str, Any] = {
        "descriptorType": kind,
        "descriptorId": record.get("id"),
        "osmId": record.get("_id"),
        "onboardingState": admin.get("onboardingState"),
        "operationalState": admin.get("operationalState"),
        "usageState": admin.get("usageState"),
    }
    if kind == "vnfd":
        kdus = vnfd_kdus(record)
        ext["kdus"] = [
            {"name": name, "helmChart": chart, "jujuBundle": bundle} for name, chart, bundle in kdus
        ]
        # A KNF whose KDUs are Helm charts: values, upgrade and rollback go to Helm.
        ext["helmBased"] = bool(kdus) and all(chart for _, chart, _ in kdus)
        ext["scalingAspects"] = [
            {"id": aspect, "maxScaleLevel": level} for aspect, level in vnfd_scaling_aspects(record)
        ]
    else:
        ext["memberVnfs"] = [
            {"memberVnfIndex": index, "vnfdId": vnfd} for index, vnfd in member_vnfs(record)
        ]
        ext["vnfdIds"] = [v for v in record.get("vnfd-id") or [] if isinstance(v, str)]
    return {k: v for k, v in ext.items() if v is not None}


__all__ = [
    "ArchiveFacts",
    "Kdu",
    "ScalingAspect",
    "descriptor_name",
    "descriptor_version",
    "inspect_archive",
    "member_vnfs",
    "package_extensions",
    "unwrap",
    "vnfd_kdus",
    "vnfd_scaling_aspects",
]

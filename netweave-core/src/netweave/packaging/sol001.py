"""Reading a SOL001 (TOSCA YAML) VNFD out of a CSAR into :class:`~netweave.packaging.vnfd.Vnfd`.

What is read: the ``tosca.nodes.nfv.VNF`` node (its properties, or the defaults and single
``valid_values`` of the derived node type a Tacker-style top-level file declares), one
deployment flavour per topology template that holds a VNF node or ``substitution_mappings``
(``flavour_id`` from either), the VDUs of that template
(``tosca.nodes.nfv.Vdu.OsContainerDeployableUnit`` or ``tosca.nodes.nfv.Vdu.Compute``, with
``vdu_profile``), its ``tosca.policies.nfv.ScalingAspects``, ``VduScalingAspectDeltas``,
``InstantiationLevels`` and ``VduInstantiationLevels``.

What is checked (each a 400 naming the file and the node): YAML without aliases, a TOSCA
version, imports that resolve (a file inside the package, relative to the importing file and
never outside it, or one of the ETSI SOL001 type files by its standard forge URL, resolved from
the definitions netweave ships: never fetched), node and policy types that are defined (by the
VNFD or the shipped SOL001 types), the VNF's mandatory properties, at least one flavour, policy
targets that exist, deltas and levels naming declared aspects, levels within
``max_scale_level``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import posixpath
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import yaml

from netweave.errors import InvalidInput
from netweave.packaging.vnfd import Aspect, Container, Flavour, InstantiationLevel, Vdu, Vnfd

#: The ETSI SOL001 type files a VNFD imports by URL, resolved offline.
_SOL001_FILE = re.compile(
    r"^https?://forge\.etsi\.org/rep/nfv/SOL001/raw/v\d+\.\d+\.\d+/"
    r"(etsi_nfv_sol001_(common|vnfd)_types\.yaml)$"
)
_SOL001_BASENAMES = frozenset(
    {"etsi_nfv_sol001_common_types.yaml", "etsi_nfv_sol001_vnfd_types.yaml"}
)
MAX_FILES = 64
_VNF = "tosca.nodes.nfv.VNF"
_VDU_TYPES = ("tosca.nodes.nfv.Vdu.OsContainerDeployableUnit", "tosca.nodes.nfv.Vdu.Compute")
_CONTAINER = "tosca.nodes.nfv.Vdu.OsContainer"
_REQUIRED = ("descriptor_id", "descriptor_version", "provider", "product_name", "software_version")


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases (a cheap defence against "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed in a VNFD", event.start_mark
            )
        return super().compose_node(parent, index)


def bad(message: str, **details: Any) -> InvalidInput:
    return InvalidInput(f"invalid VNFD: {message}", details={"field": "vnfd", **details})


def load_yaml(data: bytes, where: str) -> dict[str, Any]:
    try:
        document = yaml.load(data, Loader=_NoAliasLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise bad(f"{where} is not valid YAML{line}", file=where) from None
    if not isinstance(document, dict):
        raise bad(f"{where} is not a YAML mapping", file=where)
    return document


@functools.cache
def _parsed_shipped_types() -> dict[str, Any]:
    text = (
        resources.files("netweave.packaging")
        .joinpath("sol001/netweave_sol001_types.yaml")
        .read_bytes()
    )
    return load_yaml(text, "netweave_sol001_types.yaml")


def _shipped_types() -> dict[str, Any]:
    # Parsed once (it ships with the code): parsing it at each of its three uses per VNFD was
    # most of a VNFD's reading (~8 ms each). A copy: nothing of a VNFD's reading can alter it.
    return copy.deepcopy(_parsed_shipped_types())


def _import_name(entry: Any, where: str) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        if "file" in entry and isinstance(entry["file"], str):
            return str(entry["file"])
        if len(entry) == 1:  # TOSCA 1.0 style: {name: file}
            value = next(iter(entry.values()))
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("file"), str):
                return str(value["file"])
    raise bad(f"{where}: an import is neither a file name nor {{file: …}}", file=where)


def _local_path(base: str, name: str, where: str) -> str:
    if "://" in name or name.startswith("/") or "\\" in name:
        raise bad(
            f"{where} imports {name!r}: only files inside the package and the ETSI SOL001 type "
            "files are resolved (nothing is fetched from the network)",
            file=where,
            importName=name,
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), name))
    if joined.startswith("../") or joined == "..":
        raise bad(f"{where} imports {name!r}, outside the package", file=where, importName=name)
    return joined


def load_documents(entry: str, read: Callable[[str], bytes]) -> dict[str, dict[str, Any]]:
    """The entry file and every local file it imports, transitively (at most ``MAX_FILES``);
    the SOL001 type imports resolved to netweave's shipped definitions."""
    documents: dict[str, dict[str, Any]] = {}
    pending = [entry]
    while pending:
        path = pending.pop()
        if path in documents:
            continue
        if len(documents) >= MAX_FILES:
            raise bad(f"the VNFD imports more than {MAX_FILES} files")
        try:
            data = read(path)
        except KeyError:
            raise bad(f"{path} is not in the package", file=path) from None
        document = load_yaml(data, path)
        version = document.get("tosca_definitions_version")
        if not isinstance(version, str) or not version.startswith("tosca_simple_"):
            raise bad(f"{path} has no tosca_definitions_version", file=path)
        documents[path] = document
        imports = document.get("imports") or []
        if not isinstance(imports, list):
            raise bad(f"{path}: imports is not a list", file=path)
        for item in imports:
            name = _import_name(item, path)
            if _SOL001_FILE.match(name):
                continue  # the shipped definitions (always loaded)
            if posixpath.basename(name) in _SOL001_BASENAMES:
                # By name: a copy inside the package is part of the VNFD's files when present,
                # but the shipped definitions are what the types resolve to.
                with contextlib.suppress(KeyError):
                    read(_local_path(path, name, path))
                continue
            pending.append(_local_path(path, name, path))
    return documents


def _types(documents: dict[str, dict[str, Any]], section: str) -> dict[str, Any]:
    merged: dict[str, Any] = dict(_shipped_types().get(section) or {})
    for path, document in documents.items():
        declared = document.get(section) or {}
        if not isinstance(declared, dict):
            raise bad(f"{path}: {section} is not a mapping", file=path)
        merged.update(declared)
    return merged


def _derives(type_name: str, target: str, types: dict[str, Any]) -> bool:
    seen = set()
    current: str | None = type_name
    while current is not None and current not in seen:
        if current == target:
            return True
        seen.add(current)
        definition = types.get(current)
        current = definition.get("derived_from") if isinstance(definition, dict) else None
    return False


def _known(type_name: Any, types: dict[str, Any], where: str, what: str) -> str:
    if not isinstance(type_name, str) or type_name not in types:
        raise bad(f"{where}: {what} has the undefined type {type_name!r}", file=where, node=what)
    return type_name


def _type_default(type_name: str, prop: str, types: dict[str, Any]) -> Any:
    """A property's value fixed by a derived node type: its default, or its only valid value
    (how Tacker-style top-level VNFDs pin descriptor_id and the like)."""
    current: str | None = type_name
    seen = set()
    while current is not None and current not in seen:
        seen.add(current)
        definition = types.get(current)
        if not isinstance(definition, dict):
            return None
        spec = (definition.get("properties") or {}).get(prop)
        if isinstance(spec, dict):
            if "default" in spec:
                return spec["default"]
            for constraint in spec.get("constraints") or []:
                if isinstance(constraint, dict):
                    values = constraint.get("valid_values")
                    if isinstance(values, list) and len(values) == 1:
                        return values[0]
        current = definition.get("derived_from")
    return None


def _int(value: Any, where: str, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise bad(f"{where}: {what} must be an integer ≥ {low}", file=where, node=what)
    return value


def _policies(template: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    raw = template.get("policies") or []
    items: list[tuple[str, dict[str, Any]]] = []
    if isinstance(raw, dict):
        raw = [{k: v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise bad(f"{where}: policies is not a list", file=where)
    for entry in raw:
        if not isinstance(entry, dict):
            raise bad(f"{where}: a policy is not a mapping", file=where)
        for name, body in entry.items():
            if not isinstance(body, dict):
                raise bad(f"{where}: policy {name} is not a mapping", file=where, node=name)
            items.append((str(name), body))
    return items


def _flavour(
    path: str,
    template: dict[str, Any],
    node_types: dict[str, Any],
    policy_types: dict[str, Any],
    descriptor: dict[str, Any],
) -> Flavour | None:
    nodes = template.get("node_templates") or {}
    if not isinstance(nodes, dict):
        raise bad(f"{path}: node_templates is not a mapping", file=path)
    mapping = template.get("substitution_mappings")
    vnf_nodes: list[tuple[str, dict[str, Any]]] = []
    vdus: list[Vdu] = []
    containers: dict[str, Container] = {}
    for name, node in nodes.items():
        if not isinstance(node, dict):
            raise bad(f"{path}: node {name} is not a mapping", file=path, node=name)
        type_name = _known(node.get("type"), node_types, path, str(name))
        properties = node.get("properties") or {}
        if not isinstance(properties, dict):
            raise bad(f"{path}: {name}.properties is not a mapping", file=path, node=name)
        if _derives(type_name, _VNF, node_types):
            vnf_nodes.append((type_name, properties))
        elif _derives(type_name, _CONTAINER, node_types):
            containers[str(name)] = Container(
                name=str(properties.get("name") or name),
                image=str((node.get("metadata") or {}).get("image") or ""),
            )
    for name, node in nodes.items():
        type_name = node["type"]
        if not any(_derives(type_name, t, node_types) for t in _VDU_TYPES):
            continue
        properties = node.get("properties") or {}
        profile = properties.get("vdu_profile")
        if not isinstance(profile, dict):
            raise bad(f"{path}: VDU {name} has no vdu_profile", file=path, node=name)
        low = _int(profile.get("min_number_of_instances"), path, f"{name}.vdu_profile min")
        high = _int(profile.get("max_number_of_instances"), path, f"{name}.vdu_profile max")
        if high < low:
            raise bad(f"{path}: VDU {name} has max_number_of_instances < min", node=name)
        metadata = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
        vdu_containers = []
        for requirement in node.get("requirements") or []:
            if isinstance(requirement, dict) and "container" in requirement:
                target = requirement["container"]
                if target not in containers:
                    raise bad(
                        f"{path}: VDU {name} requires container {target!r}, not declared",
                        file=path,
                        node=name,
                    )
                vdu_containers.append(containers[target])
        vdus.append(
            Vdu(
                vdu_id=str(name),
                name=str(properties.get("name") or name),
                description=str(properties.get("description") or ""),
                containers=vdu_containers,
                min_instances=low,
                max_instances=high,
                initial_instances=low,
                workload_kind=metadata.get("netweave.workloadKind"),
                replica_key=metadata.get("netweave.replicaKey"),
            )
        )
    if not vnf_nodes and not isinstance(mapping, dict):
        return None
    for type_name, properties in vnf_nodes:
        for prop in (*_REQUIRED, "vnfm_info", "flavour_id", "flavour_description"):
            value = properties.get(prop)
            if value is None:
                value = _type_default(type_name, prop, node_types)
            if value is not None and prop not in descriptor:
                descriptor[prop] = value
    if isinstance(mapping, dict):
        mapped = mapping.get("properties") or {}
        if isinstance(mapped, dict) and "flavour_id" in mapped:
            descriptor.setdefault("_flavour_ids", []).append(str(mapped["flavour_id"]))
        node_type = mapping.get("node_type")
        if isinstance(node_type, str) and node_type in node_types:
            for prop in _REQUIRED:
                value = _type_default(node_type, prop, node_types)
                if value is not None:
                    descriptor.setdefault(prop, value)
    flavour_id = None
    if isinstance(mapping, dict):
        mapped = mapping.get("properties") or {}
        if isinstance(mapped, dict) and mapped.get("flavour_id") is not None:
            flavour_id = str(mapped["flavour_id"])
    local_props = vnf_nodes[0][1] if vnf_nodes else {}
    if flavour_id is None:
        flavour_id = local_props.get("flavour_id")
        # Tacker's top-level VNFD gives { get_input: selected_flavour }: chosen at instantiate,
        # not a value here; the type's pinned value (or the flavour files) names the flavours.
        if isinstance(flavour_id, dict) and "get_input" in flavour_id:
            flavour_id = None
        flavour_id = flavour_id or (
            _type_default(vnf_nodes[0][0], "flavour_id", node_types) if vnf_nodes else None
        )
        if flavour_id is None and not vdus and not isinstance(mapping, dict):
            return None  # a top level holding the VNF's properties only
    if not isinstance(flavour_id, str) or not flavour_id:
        raise bad(f"{path}: the deployment flavour has no flavour_id", file=path)
    flavour = Flavour(
        flavour_id=flavour_id,
        description=str(local_props.get("flavour_description") or ""),
        vdus=vdus,
    )
    _read_policies(path, template, flavour, policy_types)
    return flavour


def _read_policies(
    path: str, template: dict[str, Any], flavour: Flavour, policy_types: dict[str, Any]
) -> None:
    vdu_ids = {v.vdu_id: v for v in flavour.vdus}
    aspects: dict[str, Aspect] = {}
    level_sets: list[tuple[str, dict[str, Any]]] = []
    policies = _policies(template, path)
    for name, body in policies:
        type_name = _known(body.get("type"), policy_types, path, name)
        for target in body.get("targets") or []:
            if target not in vdu_ids and not isinstance(target, str):
                raise bad(f"{path}: policy {name} has a target that is not a name", node=name)
        properties = body.get("properties") or {}
        if _derives(type_name, "tosca.policies.nfv.ScalingAspects", policy_types):
            declared = properties.get("aspects")
            if not isinstance(declared, dict) or not declared:
                raise bad(f"{path}: policy {name} declares no aspects", file=path, node=name)
            for aspect_id, spec in declared.items():
                if not isinstance(spec, dict):
                    raise bad(f"{path}: aspect {aspect_id} is not a mapping", node=aspect_id)
                aspects[str(aspect_id)] = Aspect(
                    aspect_id=str(aspect_id),
                    name=str(spec.get("name") or aspect_id),
                    description=str(spec.get("description") or ""),
                    max_scale_level=_int(
                        spec.get("max_scale_level"), path, f"aspect {aspect_id} max_scale_level"
                    ),
                )
        elif _derives(type_name, "tosca.policies.nfv.InstantiationLevels", policy_types):
            level_sets.append((name, properties))
    for name, body in policies:
        type_name = body["type"]
        properties = body.get("properties") or {}
        targets = [str(t) for t in body.get("targets") or []]
        if _derives(type_name, "tosca.policies.nfv.VduScalingAspectDeltas", policy_types):
            aspect_id = properties.get("aspect")
            if aspect_id not in aspects:
                raise bad(
                    f"{path}: policy {name} names aspect {aspect_id!r}, not declared",
                    file=path,
                    node=name,
                )
            deltas = properties.get("deltas") or {}
            step = 1
            if isinstance(deltas, dict) and deltas:
                first = next(iter(deltas.values()))
                if isinstance(first, dict):
                    step = _int(first.get("number_of_instances"), path, f"{name} delta", 1)
            for target in targets:
                if target not in vdu_ids:
                    raise bad(f"{path}: policy {name} targets {target!r}, not a VDU", node=name)
                aspects[aspect_id].deltas[target] = step
                if aspects[aspect_id].replica_key is None:
                    aspects[aspect_id].replica_key = vdu_ids[target].replica_key
        elif _derives(type_name, "tosca.policies.nfv.VduInitialDelta", policy_types):
            initial = properties.get("initial_delta") or {}
            count = _int(
                initial.get("number_of_instances") if isinstance(initial, dict) else None,
                path,
                f"{name} initial_delta",
            )
            for target in targets:
                if target not in vdu_ids:
                    raise bad(f"{path}: policy {name} targets {target!r}, not a VDU", node=name)
                vdu_ids[target].initial_instances = count
        elif _derives(type_name, "tosca.policies.nfv.VduInstantiationLevels", policy_types):
            for target in targets:
                if target not in vdu_ids:
                    raise bad(f"{path}: policy {name} targets {target!r}, not a VDU", node=name)
    for name, properties in level_sets:
        levels = properties.get("levels")
        if not isinstance(levels, dict) or not levels:
            raise bad(f"{path}: policy {name} declares no levels", file=path, node=name)
        for level_id, spec in levels.items():
            scale_info: dict[str, int] = {}
            info = spec.get("scale_info") if isinstance(spec, dict) else None
            for aspect_id, entry in (info or {}).items():
                if aspect_id not in aspects:
                    raise bad(
                        f"{path}: level {level_id} names aspect {aspect_id!r}, not declared",
                        file=path,
                        node=str(level_id),
                    )
                level = _int(
                    entry.get("scale_level") if isinstance(entry, dict) else None,
                    path,
                    f"level {level_id} scale_level of {aspect_id}",
                )
                if level > aspects[aspect_id].max_scale_level:
                    raise bad(
                        f"{path}: level {level_id} puts aspect {aspect_id} at {level}, over "
                        f"its max_scale_level {aspects[aspect_id].max_scale_level}",
                        file=path,
                        node=str(level_id),
                    )
                scale_info[str(aspect_id)] = level
            flavour.levels.append(
                InstantiationLevel(
                    level_id=str(level_id),
                    description=str((spec or {}).get("description") or ""),
                    scale_info=scale_info,
                )
            )
        default = properties.get("default_level")
        if default is not None:
            if default not in levels:
                raise bad(f"{path}: default_level {default!r} is not a declared level", node=name)
            flavour.default_level = str(default)
    flavour.aspects = list(aspects.values())


def read_vnfd(entry: str, read: Callable[[str], bytes]) -> Vnfd:
    """The VNFD whose entry definitions file is ``entry``; ``read(path)`` gives a package
    file's bytes (``KeyError`` when absent). 400 naming what is wrong."""
    documents = load_documents(entry, read)
    node_types = _types(documents, "node_types")
    policy_types = _types(documents, "policy_types")
    descriptor: dict[str, Any] = {}
    found: list[Flavour] = []
    for path, document in documents.items():
        template = document.get("topology_template")
        if template is None:
            continue
        if not isinstance(template, dict):
            raise bad(f"{path}: topology_template is not a mapping", file=path)
        flavour = _flavour(path, template, node_types, policy_types, descriptor)
        if flavour is not None:
            found.append(flavour)
    # A Tacker-style top level declares the VNF type and no VDUs: its placeholder flavour
    # (the substitution's) gives way to a flavour file that defines the same id with VDUs.
    merged: dict[str, Flavour] = {}
    for flavour in found:
        current = merged.get(flavour.flavour_id)
        if current is None or (not current.vdus and flavour.vdus):
            merged[flavour.flavour_id] = flavour
    flavours = list(merged.values())
    for prop in _REQUIRED:
        value = descriptor.get(prop)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise bad(f"the VNF node has no {prop}", property=prop)
        if not isinstance(value, str | int | float):
            raise bad(f"the VNF node's {prop} is not a scalar", property=prop)
    if not flavours:
        raise bad("no deployment flavour (no VNF node or substitution_mappings)")
    vnfm_info = descriptor.get("vnfm_info")
    return Vnfd(
        vnfd_id=str(descriptor["descriptor_id"]),
        provider=str(descriptor["provider"]),
        product_name=str(descriptor["product_name"]),
        software_version=str(descriptor["software_version"]),
        vnfd_version=str(descriptor["descriptor_version"]),
        vnfm_info=[str(v) for v in vnfm_info] if isinstance(vnfm_info, list) else ["netweave"],
        description=str(documents[entry].get("description") or ""),
        flavours=flavours,
        source="csar",
    )


__all__ = ["load_yaml", "read_vnfd"]

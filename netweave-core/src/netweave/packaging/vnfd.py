"""VNF descriptors: the one model netweave reads from a CSAR's SOL001 VNFD and generates for a
package that carries none (a bare Helm chart), and its SOL001 (TOSCA YAML) text.

The generated VNFD of a chart is a pure function of the chart (its metadata and what Helm
renders with the default values, :class:`netweave.adapters.PackageDescription`), so every
replica and every restart derives the same one:

- ``vnfdId`` = the native ``packageId`` (``{name}-{version}``), as the ``vnflcm`` face already
  names packages; ``vnfProvider`` = the chart's first maintainer (else ``netweave``),
  ``vnfProductName`` = the chart name, ``vnfSoftwareVersion`` = ``appVersion`` (else the chart
  version), ``vnfdVersion`` = the chart version;
- one deployment flavour ``default``;
- one VDU (``tosca.nodes.nfv.Vdu.OsContainerDeployableUnit``) per workload, with one
  ``tosca.nodes.nfv.Vdu.OsContainer`` per container;
- one scaling aspect per workload whose replicas a values key sets (its id ``default`` when the
  chart has exactly one, the id the ``vnflcm`` face derives for a bare chart), with the
  ``vnflcm`` face's scale rule: replicas = 1 + level (``maxScaleLevel`` 10); the key is kept in
  the VDU's TOSCA ``metadata`` (``netweave.replicaKey``);
- one instantiation level ``default`` at the chart's default replica counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from netweave.adapters import PackageDescription

#: SOL001 version whose type definitions the generated VNFD imports (resolved offline).
SOL001_VERSION = "v4.3.1"
SOL001_IMPORTS = (
    f"https://forge.etsi.org/rep/nfv/SOL001/raw/{SOL001_VERSION}/etsi_nfv_sol001_common_types.yaml",
    f"https://forge.etsi.org/rep/nfv/SOL001/raw/{SOL001_VERSION}/etsi_nfv_sol001_vnfd_types.yaml",
)
DEFAULT_FLAVOUR = "default"
DEFAULT_ASPECT = "default"
DEFAULT_LEVEL = "default"
#: The vnflcm face's defaults for an aspect (services/vnflcm.py parse_aspects).
MAX_SCALE_LEVEL = 10
MIN_REPLICAS = 1
_ID = re.compile(r"[^A-Za-z0-9_]")


@dataclass(slots=True)
class Container:
    name: str
    image: str = ""


@dataclass(slots=True)
class Vdu:
    vdu_id: str
    name: str
    description: str = ""
    containers: list[Container] = field(default_factory=list)
    min_instances: int = 1
    max_instances: int = 1
    initial_instances: int = 1
    #: Kind of the workload (generated VNFDs) and the values key of its replicas.
    workload_kind: str | None = None
    replica_key: str | None = None


@dataclass(slots=True)
class Aspect:
    aspect_id: str
    name: str
    max_scale_level: int
    description: str = ""
    #: VDU id → instances added per step.
    deltas: dict[str, int] = field(default_factory=dict)
    replica_key: str | None = None


@dataclass(slots=True)
class InstantiationLevel:
    level_id: str
    description: str
    #: Aspect id → scale level.
    scale_info: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Flavour:
    flavour_id: str
    description: str
    vdus: list[Vdu] = field(default_factory=list)
    aspects: list[Aspect] = field(default_factory=list)
    levels: list[InstantiationLevel] = field(default_factory=list)
    default_level: str | None = None


@dataclass(slots=True)
class Vnfd:
    vnfd_id: str
    provider: str
    product_name: str
    software_version: str
    vnfd_version: str
    vnfm_info: list[str] = field(default_factory=lambda: ["netweave"])
    flavours: list[Flavour] = field(default_factory=list)
    description: str = ""
    #: ``generated`` (from a bare chart) or ``csar`` (read from the package).
    source: str = "generated"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (stored with a CSAR package), read back by :meth:`from_json`."""
        return {
            "vnfdId": self.vnfd_id,
            "provider": self.provider,
            "productName": self.product_name,
            "softwareVersion": self.software_version,
            "vnfdVersion": self.vnfd_version,
            "vnfmInfo": list(self.vnfm_info),
            "description": self.description,
            "source": self.source,
            "flavours": [
                {
                    "flavourId": f.flavour_id,
                    "description": f.description,
                    "defaultLevel": f.default_level,
                    "vdus": [
                        {
                            "vduId": v.vdu_id,
                            "name": v.name,
                            "description": v.description,
                            "containers": [
                                {"name": c.name, "image": c.image} for c in v.containers
                            ],
                            "minInstances": v.min_instances,
                            "maxInstances": v.max_instances,
                            "initialInstances": v.initial_instances,
                            "workloadKind": v.workload_kind,
                            "replicaKey": v.replica_key,
                        }
                        for v in f.vdus
                    ],
                    "aspects": [
                        {
                            "aspectId": a.aspect_id,
                            "name": a.name,
                            "description": a.description,
                            "maxScaleLevel": a.max_scale_level,
                            "deltas": dict(a.deltas),
                            "replicaKey": a.replica_key,
                        }
                        for a in f.aspects
                    ],
                    "levels": [
                        {
                            "levelId": lv.level_id,
                            "description": lv.description,
                            "scaleInfo": dict(lv.scale_info),
                        }
                        for lv in f.levels
                    ],
                }
                for f in self.flavours
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vnfd:
        return cls(
            vnfd_id=data["vnfdId"],
            provider=data["provider"],
            product_name=data["productName"],
            software_version=data["softwareVersion"],
            vnfd_version=data["vnfdVersion"],
            vnfm_info=list(data.get("vnfmInfo") or []),
            description=data.get("description") or "",
            source=data.get("source") or "csar",
            flavours=[
                Flavour(
                    flavour_id=f["flavourId"],
                    description=f.get("description") or "",
                    default_level=f.get("defaultLevel"),
                    vdus=[
                        Vdu(
                            vdu_id=v["vduId"],
                            name=v["name"],
                            description=v.get("description") or "",
                            containers=[Container(**c) for c in v.get("containers") or []],
                            min_instances=v.get("minInstances", 1),
                            max_instances=v.get("maxInstances", 1),
                            initial_instances=v.get("initialInstances", 1),
                            workload_kind=v.get("workloadKind"),
                            replica_key=v.get("replicaKey"),
                        )
                        for v in f.get("vdus") or []
                    ],
                    aspects=[
                        Aspect(
                            aspect_id=a["aspectId"],
                            name=a["name"],
                            description=a.get("description") or "",
                            max_scale_level=a["maxScaleLevel"],
                            deltas=dict(a.get("deltas") or {}),
                            replica_key=a.get("replicaKey"),
                        )
                        for a in f.get("aspects") or []
                    ],
                    levels=[
                        InstantiationLevel(
                            level_id=lv["levelId"],
                            description=lv.get("description") or "",
                            scale_info=dict(lv.get("scaleInfo") or {}),
                        )
                        for lv in f.get("levels") or []
                    ],
                )
                for f in data.get("flavours") or []
            ],
        )

    def instantiation_levels(self, flavour_id: str | None = None) -> dict[str, dict[str, int]]:
        """Each instantiation level of the flavour (its first when ``flavour_id`` is not one of
        the VNFD's): level id → aspect id → scale level."""
        known = {f.flavour_id for f in self.flavours}
        for flavour in self.flavours:
            if flavour_id in known and flavour.flavour_id != flavour_id:
                continue
            return {level.level_id: dict(level.scale_info) for level in flavour.levels}
        return {}

    def default_level(self, flavour_id: str | None = None) -> dict[str, int]:
        """The aspects' levels of the flavour's default instantiation level (its first flavour
        when ``flavour_id`` is not one of the VNFD's); empty when it names none."""
        known = {f.flavour_id for f in self.flavours}
        for flavour in self.flavours:
            if flavour_id in known and flavour.flavour_id != flavour_id:
                continue
            for level in flavour.levels:
                if level.level_id == flavour.default_level:
                    return dict(level.scale_info)
            return {}
        return {}

    def scale_aspects(self, flavour_id: str | None = None) -> dict[str, dict[str, Any]]:
        """The ``vnflcm`` face's ``additionalParams.scaleAspects`` this VNFD implies: each
        aspect with a replica key (min replicas, one replica a step, its max level)."""
        aspects: dict[str, dict[str, Any]] = {}
        for flavour in self.flavours:
            if flavour_id is not None and flavour.flavour_id != flavour_id:
                continue
            for aspect in flavour.aspects:
                if aspect.replica_key is None:
                    continue
                step = max(aspect.deltas.values(), default=1)
                vdus = {v.vdu_id: v for v in flavour.vdus}
                minimum = min(
                    (vdus[v].min_instances for v in aspect.deltas if v in vdus), default=1
                )
                aspects[aspect.aspect_id] = {
                    "replicaKey": aspect.replica_key,
                    "minReplicas": minimum,
                    "replicasPerStep": step,
                    "maxScaleLevel": aspect.max_scale_level,
                }
            break
        return aspects


def _tosca_id(text: str, taken: set[str]) -> str:
    base = _ID.sub("_", text) or "vdu"
    if base[0].isdigit():
        base = f"vdu_{base}"
    candidate = base
    n = 2
    while candidate in taken:
        candidate = f"{base}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _text(value: Any, default: str) -> str:
    return str(value) if isinstance(value, str | int | float) and str(value) else default


def software_version(version: str, app_version: Any) -> str:
    """A chart's software version: its ``appVersion``, else its version."""
    return _text(app_version, version)


def generated_vnfd(
    vnfd_id: str,
    name: str,
    version: str,
    description: PackageDescription | None,
    *,
    provider: str | None = None,
    app_version: Any = None,
    summary: str | None = None,
) -> Vnfd:
    """The VNFD of a bare chart (see the module docstring); ``provider``, ``app_version`` and
    ``summary`` as the native package record has them from Chart.yaml (its first maintainer,
    ``appVersion``, ``description``), so the VNF package's attributes and its VNFD agree."""
    taken: set[str] = set()
    vdus: list[Vdu] = []
    for workload in description.workloads if description is not None else ():
        vdu_id = _tosca_id(workload.name, taken)
        initial = workload.replicas if workload.replicas is not None else 1
        scalable = workload.replica_key is not None
        vdus.append(
            Vdu(
                vdu_id=vdu_id,
                name=workload.name,
                description=f"{workload.kind} {workload.name}",
                containers=[Container(name=n, image=i) for n, i in workload.containers],
                min_instances=MIN_REPLICAS if scalable else initial,
                max_instances=MIN_REPLICAS + MAX_SCALE_LEVEL if scalable else initial,
                initial_instances=initial,
                workload_kind=workload.kind,
                replica_key=workload.replica_key,
            )
        )
    scalable_vdus = [v for v in vdus if v.replica_key is not None]
    aspects: list[Aspect] = []
    for vdu in scalable_vdus:
        aspect_id = DEFAULT_ASPECT if len(scalable_vdus) == 1 else vdu.vdu_id
        aspects.append(
            Aspect(
                aspect_id=aspect_id,
                name=aspect_id,
                description=f"replicas of {vdu.name} ({vdu.replica_key})",
                max_scale_level=MAX_SCALE_LEVEL,
                deltas={vdu.vdu_id: 1},
                replica_key=vdu.replica_key,
            )
        )
    by_vdu = {next(iter(a.deltas)): a for a in aspects}
    level = InstantiationLevel(
        level_id=DEFAULT_LEVEL,
        description="the chart's default values",
        scale_info={
            by_vdu[v.vdu_id].aspect_id: min(
                MAX_SCALE_LEVEL, max(0, v.initial_instances - MIN_REPLICAS)
            )
            for v in scalable_vdus
        },
    )
    flavour = Flavour(
        flavour_id=DEFAULT_FLAVOUR,
        description="the chart as packaged",
        vdus=vdus,
        aspects=aspects,
        levels=[level],
        default_level=DEFAULT_LEVEL,
    )
    return Vnfd(
        vnfd_id=vnfd_id,
        provider=_text(provider, "netweave"),
        product_name=name,
        software_version=software_version(version, app_version),
        vnfd_version=version,
        description=_text(summary, f"Helm chart {name} {version}"),
        flavours=[flavour],
        source="generated",
    )


def to_sol001(vnfd: Vnfd) -> str:
    """The VNFD as a SOL001 TOSCA service template (one file, importing the SOL001 types)."""
    templates: dict[str, Any] = {}
    policies: list[dict[str, Any]] = []
    flavour = vnfd.flavours[0] if vnfd.flavours else Flavour(DEFAULT_FLAVOUR, "")
    templates["VNF"] = {
        "type": "tosca.nodes.nfv.VNF",
        "properties": {
            "descriptor_id": vnfd.vnfd_id,
            "descriptor_version": vnfd.vnfd_version,
            "provider": vnfd.provider,
            "product_name": vnfd.product_name,
            "software_version": vnfd.software_version,
            "product_info_name": vnfd.product_name,
            "vnfm_info": list(vnfd.vnfm_info),
            "flavour_id": flavour.flavour_id,
            "flavour_description": flavour.description,
        },
    }
    for vdu in flavour.vdus:
        requirements = []
        for container in vdu.containers:
            cid = f"{vdu.vdu_id}_{_ID.sub('_', container.name) or 'container'}"
            templates[cid] = {
                "type": "tosca.nodes.nfv.Vdu.OsContainer",
                "properties": {"name": container.name, "description": container.image},
                "metadata": {"image": container.image},
            }
            requirements.append({"container": cid})
        template: dict[str, Any] = {
            "type": "tosca.nodes.nfv.Vdu.OsContainerDeployableUnit",
            "properties": {
                "name": vdu.name,
                "description": vdu.description,
                "vdu_profile": {
                    "min_number_of_instances": vdu.min_instances,
                    "max_number_of_instances": vdu.max_instances,
                },
            },
        }
        meta = {}
        if vdu.workload_kind:
            meta["netweave.workloadKind"] = vdu.workload_kind
        if vdu.replica_key:
            meta["netweave.replicaKey"] = vdu.replica_key
        if meta:
            template["metadata"] = meta
        if requirements:
            template["requirements"] = requirements
        templates[vdu.vdu_id] = template
    if flavour.aspects:
        policies.append(
            {
                "scaling_aspects": {
                    "type": "tosca.policies.nfv.ScalingAspects",
                    "properties": {
                        "aspects": {
                            a.aspect_id: {
                                "name": a.name,
                                "description": a.description,
                                "max_scale_level": a.max_scale_level,
                                "step_deltas": ["delta_1"],
                            }
                            for a in flavour.aspects
                        }
                    },
                }
            }
        )
        for aspect in flavour.aspects:
            for vdu_id, delta in aspect.deltas.items():
                policies.append(
                    {
                        f"{vdu_id}_{aspect.aspect_id}_deltas": {
                            "type": "tosca.policies.nfv.VduScalingAspectDeltas",
                            "properties": {
                                "aspect": aspect.aspect_id,
                                "deltas": {"delta_1": {"number_of_instances": delta}},
                            },
                            "targets": [vdu_id],
                        }
                    }
                )
    vdus = {v.vdu_id: v for v in flavour.vdus}
    for vdu in flavour.vdus:
        policies.append(
            {
                f"{vdu.vdu_id}_initial_delta": {
                    "type": "tosca.policies.nfv.VduInitialDelta",
                    "properties": {"initial_delta": {"number_of_instances": vdu.min_instances}},
                    "targets": [vdu.vdu_id],
                }
            }
        )
    if flavour.levels:
        policies.append(
            {
                "instantiation_levels": {
                    "type": "tosca.policies.nfv.InstantiationLevels",
                    "properties": {
                        "levels": {
                            lv.level_id: {
                                "description": lv.description,
                                "scale_info": {
                                    a: {"scale_level": s} for a, s in lv.scale_info.items()
                                },
                            }
                            for lv in flavour.levels
                        },
                        **(
                            {"default_level": flavour.default_level}
                            if flavour.default_level
                            else {}
                        ),
                    },
                }
            }
        )
        for vdu_id, vdu in vdus.items():
            policies.append(
                {
                    f"{vdu_id}_instantiation_levels": {
                        "type": "tosca.policies.nfv.VduInstantiationLevels",
                        "properties": {
                            "levels": {
                                lv.level_id: {"number_of_instances": vdu.initial_instances}
                                for lv in flavour.levels
                            }
                        },
                        "targets": [vdu_id],
                    }
                }
            )
    document = {
        "tosca_definitions_version": "tosca_simple_yaml_1_3",
        "description": vnfd.description,
        "metadata": {
            "template_name": vnfd.product_name,
            "template_author": vnfd.provider,
            "template_version": vnfd.vnfd_version,
            "generated_by": "netweave",
        },
        "imports": list(SOL001_IMPORTS),
        "topology_template": {"node_templates": templates, "policies": policies},
    }
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return text


__all__ = [
    "DEFAULT_ASPECT",
    "DEFAULT_FLAVOUR",
    "SOL001_IMPORTS",
    "Aspect",
    "Container",
    "Flavour",
    "InstantiationLevel",
    "Vdu",
    "Vnfd",
    "generated_vnfd",
    "software_version",
    "to_sol001",
]

"""CustomResourceDefinition handling: validation, discovery entries, Established status."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from netweave.testing.k8s.errors import ApiError, invalid
from netweave.testing.k8s.resources import Resource, ScalePaths
from netweave.testing.k8s.util import JSONDict, clone, now_rfc3339

if TYPE_CHECKING:
    from netweave.testing.k8s.api import ApiCore

#: Multus' NetworkAttachmentDefinition CRD. Multus is not part of Kubernetes, yet CNF charts
#: (free5gc among them) create these objects: install it first, as a cluster with Multus has it.
MULTUS_CRD: JSONDict = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "network-attachment-definitions.k8s.cni.cncf.io"},
    "spec": {
        "group": "k8s.cni.cncf.io",
        "scope": "Namespaced",
        "names": {
            "plural": "network-attachment-definitions",
            "singular": "network-attachment-definition",
            "kind": "NetworkAttachmentDefinition",
            "shortNames": ["net-attach-def"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes' version priority (v2 > v1 > v1beta2 > v1alpha1 > other)."""
    m = _VERSION_RE.match(version)
    if not m:
        return (0, 0, 0, version)
    major = int(m.group(1))
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, major, minor, "")


def validate_crd(obj: JSONDict) -> None:
    spec = obj.get("spec")
    name = str((obj.get("metadata") or {}).get("name") or "")
    causes: list[tuple[str, str, str]] = []
    if not isinstance(spec, dict):
        raise invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            name,
            [("FieldValueRequired", "spec", "Required value")],
        )
    group = spec.get("group")
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural") if isinstance(names, dict) else None
    if not group:
        causes.append(("FieldValueRequired", "spec.group", "Required value"))
    if not plural:
        causes.append(("FieldValueRequired", "spec.names.plural", "Required value"))
    if not (names or {}).get("kind"):
        causes.append(("FieldValueRequired", "spec.names.kind", "Required value"))
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": '
                'supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(
            (
                "FieldValueRequired",
                "spec.versions",
                "Required value: must have exactly one version marked as storage version",
            )
        )
    else:
        storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
        if len(storage) != 1:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        for i, v in enumerate(versions):
            schema = (
                ((v or {}).get("schema") or {}).get("openAPIV3Schema")
                if isinstance(v, dict)
                else None
            )
            if not isinstance(schema, dict):
                causes.append(
                    (
                        "FieldValueRequired",
                        f"spec.versions[{i}].schema.openAPIV3Schema",
                        "Required value: schemas are required",
                    )
                )
    if causes:
        raise invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)


def default_crd(obj: JSONDict) -> None:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    conv = spec.setdefault("conversion", {"strategy": "None"})
    if isinstance(conv, dict):
        conv.setdefault("strategy", "None")


def check_names_free(core: ApiCore, obj: JSONDict) -> None:
    spec = obj["spec"]
    for v in spec["versions"]:
        existing = core.registry.get(spec["group"], v["name"], spec["names"]["plural"])
        if existing is not None and not existing.is_custom:
            raise ApiError(409, f"{spec['names']['plural']}.{spec['group']} is a built-in resource")


def _resources(obj: JSONDict) -> list[Resource]:
    spec = obj["spec"]
    names = spec["names"]
    storage = next(
        (v["name"] for v in spec["versions"] if v.get("storage")), spec["versions"][0]["name"]
    )
    served = sorted(
        (v for v in spec["versions"] if v.get("served", True)),
        key=lambda v: version_priority(str(v["name"])),
        reverse=True,
    )
    out = []
    for idx, v in enumerate(served):
        sub = v.get("subresources") or {}
        scale = sub.get("scale")
        out.append(
            Resource(
                group=spec["group"],
                version=v["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in sub,
                scale=ScalePaths(
                    spec_replicas=str(scale.get("specReplicasPath", ".spec.replicas")).lstrip("."),
                    status_replicas=str(scale.get("statusReplicasPath", ".status.replicas")).lstrip(
                        "."
                    ),
                    label_selector=str(scale["labelSelectorPath"]).lstrip(".")
                    if scale.get("labelSelectorPath")
                    else None,
                )
                if isinstance(scale, dict)
                else None,
                generation=True,
                schema=clone(((v.get("schema") or {}).get("openAPIV3Schema")) or None),
                crd=obj["metadata"]["name"],
                storage_version=storage,
                preferred=idx == 0,
            )
        )
    return out


def established(core: ApiCore, obj: JSONDict) -> None:
    """Serve the CRD's versions and mark it Established (the apiserver does it at once)."""
    if obj["metadata"].get("deletionTimestamp"):
        return
    core.registry.remove_crd(obj["metadata"]["name"])
    for res in _resources(obj):
        core.registry.add(res)
    spec = obj["spec"]
    names = spec["names"]
    now = now_rfc3339()
    status: dict[str, Any] = {
        "acceptedNames": {
            k: names[k]
            for k in ("plural", "singular", "kind", "listKind", "shortNames", "categories")
            if k in names
        },
        "storedVersions": [next(v["name"] for v in spec["versions"] if v.get("storage"))],
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
    }
    cur = core.store.get(
        ("apiextensions.k8s.io", "customresourcedefinitions"), "", obj["metadata"]["name"]
    )
    if cur is None:
        return
    old = cur.get("status") or {}
    if old.get("conditions"):
        # Keep transition times stable across updates.
        status["conditions"] = old["conditions"]
        prior = old.get("storedVersions") or []
        status["storedVersions"] = sorted(set(prior) | set(status["storedVersions"]))
    if old == status:
        return
    res = core.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    from netweave.testing.k8s.api import WriteOptions

    new = clone(cur)
    new["status"] = status
    core.update(
        res, "", obj["metadata"]["name"], new, WriteOptions(internal=True), subresource="status"
    )


def removed(core: ApiCore, obj: JSONDict) -> None:
    """Stop serving a deleted CRD and drop its custom resources."""
    spec = obj.get("spec") or {}
    gone = core.registry.remove_crd(obj["metadata"]["name"])
    if not gone:
        return
    res = gone[0]
    for item in core.store.items(res.storage_key):
        core._remove(res, item, orphan=False)
    del spec

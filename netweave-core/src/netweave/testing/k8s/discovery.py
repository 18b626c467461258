"""Discovery documents: legacy (/api, /apis, /api/v1, /apis/G/V) and aggregated (v2)."""

from __future__ import annotations

from typing import Any

from netweave.testing.k8s.crds import version_priority
from netweave.testing.k8s.resources import Registry, Resource
from netweave.testing.k8s.util import JSONDict

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

_SUB_VERBS = ("get", "patch", "update")


def wants_aggregated(accept: str) -> str | None:
    """The aggregated media type to answer with, if the client asked for one."""
    text = accept.replace(" ", "")
    if "as=APIGroupDiscoveryList" not in text:
        return None
    for part in text.split(","):
        if "as=APIGroupDiscoveryList" in part and "v=v2;" in part + ";" and "v=v2beta1" not in part:
            return AGGREGATED_V2
    for part in text.split(","):
        if "as=APIGroupDiscoveryList" in part and "v=v2beta1" in part:
            return AGGREGATED_V2BETA1
    return None


def _subresources(res: Resource) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """(name, group, version, kind, verbs) for each subresource of ``res``."""
    out: list[tuple[str, str, str, str, tuple[str, ...]]] = []
    if res.status:
        out.append(("status", res.group, res.version, res.kind, _SUB_VERBS))
    if res.scale is not None:
        out.append(("scale", "autoscaling", "v1", "Scale", _SUB_VERBS))
    for extra in res.extra_subresources:
        if extra == "log":
            out.append(("log", "", "v1", "Pod", ("get",)))
        elif extra == "eviction":
            out.append(("eviction", "policy", "v1", "Eviction", ("create",)))
        elif extra == "finalize":
            out.append(("finalize", "", "v1", "Namespace", ("update",)))
        elif extra == "token":
            out.append(("token", "authentication.k8s.io", "v1", "TokenRequest", ("create",)))
        elif extra in ("ephemeralcontainers", "resize"):
            out.append((extra, "", "v1", "Pod", _SUB_VERBS))
    return out


def _legacy_entry(res: Resource) -> list[JSONDict]:
    main: JSONDict = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    out = [main]
    for name, group, version, kind, verbs in _subresources(res):
        entry: JSONDict = {
            "name": f"{res.plural}/{name}",
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": kind,
            "verbs": list(verbs),
        }
        if group != res.group or version != res.version:
            entry["group"] = group
            entry["version"] = version
        out.append(entry)
    return out


def resource_list(registry: Registry, group: str, version: str) -> JSONDict | None:
    found = [r for r in registry.all() if r.group == group and r.version == version]
    if not found:
        return None
    resources: list[JSONDict] = []
    for r in sorted(found, key=lambda r: r.plural):
        resources += _legacy_entry(r)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _group_versions(resources: list[Resource]) -> list[str]:
    return sorted({r.version for r in resources}, key=version_priority, reverse=True)


def api_versions(server_address: str) -> JSONDict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            # Every client (CIDR "any") is told to use the emulator's own address.
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(group: str, resources: list[Resource]) -> JSONDict:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in _group_versions(resources)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_list(registry: Registry) -> JSONDict:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, rs) for g, rs in registry.groups()],
    }


def group(registry: Registry, name: str) -> JSONDict | None:
    for g, rs in registry.groups():
        if g == name:
            doc = _group_doc(g, rs)
            doc["kind"] = "APIGroup"
            doc["apiVersion"] = "v1"
            return doc
    return None


def _aggregated_resource(res: Resource) -> JSONDict:
    entry: JSONDict = {
        "resource": res.plural,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    subs = [
        {
            "subresource": name,
            "responseKind": {"group": g, "version": v, "kind": k},
            "verbs": list(verbs),
        }
        for name, g, v, k, verbs in _subresources(res)
    ]
    if subs:
        entry["subresources"] = subs
    return entry


def _aggregated_group(name: str, resources: list[Resource]) -> JSONDict:
    versions: list[Any] = []
    for v in _group_versions(resources):
        rs = sorted((r for r in resources if r.version == v), key=lambda r: r.plural)
        versions.append(
            {
                "version": v,
                "resources": [_aggregated_resource(r) for r in rs],
                "freshness": "Current",
            }
        )
    meta: JSONDict = (
        {"name": name, "creationTimestamp": None} if name else {"creationTimestamp": None}
    )
    return {"metadata": meta, "versions": versions}


def aggregated(registry: Registry, core: bool, media_type: str) -> JSONDict:
    api_version = (
        "apidiscovery.k8s.io/v2beta1" if "v2beta1" in media_type else "apidiscovery.k8s.io/v2"
    )
    if core:
        items = [_aggregated_group("", [r for r in registry.all() if not r.group])]
    else:
        items = [_aggregated_group(g, rs) for g, rs in registry.groups()]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    }

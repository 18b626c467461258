"""A release's objects as the cluster holds them: readiness by each kind's rule (the core's
:mod:`netweave.health.readiness`) and drift from the manifest Helm recorded
(:mod:`netweave.health.diff`).

Blocking (the ``kubernetes`` client): run in a thread. One GET per object of the manifest, and
one Pod list per namespace where a Service with a selector needs its endpoints judged.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import yaml
from netweave.adapters.kubernetes import ObjectReader, kube_error_class
from netweave.errors import BackendUnavailable
from netweave.health.diff import differences, unified
from netweave.health.readiness import NEEDS_PODS, readiness, relations
from netweave.models import DriftItem, ResourceDiff, ResourceStatus
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DiffState = Literal["in-sync", "modified", "missing", "added", "removed"]
_DOCUMENT = re.compile(r"^---\s*$", re.M)

#: kind → (plural, namespaced) for the kinds charts commonly hold; others are guessed (a lower
#: case plural, namespaced), and a guess the server does not know is reported unjudged.
_KINDS: Mapping[str, tuple[str, bool]] = {
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Pod": ("pods", True),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "Endpoints": ("endpoints", True),
    "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True),
    "DaemonSet": ("daemonsets", True),
    "ReplicaSet": ("replicasets", True),
    "Job": ("jobs", True),
    "CronJob": ("cronjobs", True),
    "Ingress": ("ingresses", True),
    "NetworkPolicy": ("networkpolicies", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "Namespace": ("namespaces", False),
    "PersistentVolume": ("persistentvolumes", False),
    "StorageClass": ("storageclasses", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "PriorityClass": ("priorityclasses", False),
    "MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
    "ValidatingWebhookConfiguration": ("validatingwebhookconfigurations", False),
}


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy")):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


@dataclass(frozen=True, slots=True)
class Desired:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    obj: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


#: Parsed manifests kept (see :func:`desired_objects`): at most this many, of at most this many
#: characters of manifest text in all (a manifest larger than an eighth of it is not kept).
_PARSED_ENTRIES = 512
_PARSED_CHARS = 4_000_000
_parsed: OrderedDict[tuple[str, str], tuple[Desired, ...]] = OrderedDict()
_parsed_chars = 0
_parsed_lock = threading.Lock()


def desired_objects(manifest: str, namespace: str) -> list[Desired]:
    """The objects of Helm's rendered manifest (``List`` kinds are not unpacked: Helm does not
    render them for releases).

    A release's manifest is inspected again at every describe of it (the runner's polls, the
    reconciler's reads: 3.2 per create in the 200-create bench) and parsing it is a quarter of
    an inspection's CPU (1.1 ms of 4.5 for the three objects of a hello-world chart): the last
    manifests parsed are kept, least recently used first out. The objects are shared between
    callers: they must not be modified."""
    global _parsed_chars
    key = (namespace, manifest)
    with _parsed_lock:
        kept = _parsed.get(key)
        if kept is not None:
            _parsed.move_to_end(key)
            return list(kept)
    found = tuple(_parse(manifest, namespace))
    if len(manifest) <= _PARSED_CHARS // 8:
        with _parsed_lock:
            if key not in _parsed:
                _parsed[key] = found
                _parsed_chars += len(manifest)
                while len(_parsed) > _PARSED_ENTRIES or _parsed_chars > _PARSED_CHARS:
                    (_, old), _ = _parsed.popitem(last=False)
                    _parsed_chars -= len(old)
    return list(found)


def _parse(manifest: str, namespace: str) -> list[Desired]:
    found: list[Desired] = []
    for chunk in _DOCUMENT.split(manifest):
        if not chunk.strip():
            continue
        try:
            docs = load_documents(chunk)
        except yaml.YAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc:
                continue
            meta_value = doc.get("metadata")
            meta: dict[str, Any] = meta_value if isinstance(meta_value, dict) else {}
            kind = str(doc["kind"])
            namespaced = _KINDS.get(kind, ("", True))[1]
            found.append(
                Desired(
                    api_version=str(doc.get("apiVersion") or "v1"),
                    kind=kind,
                    name=str(meta.get("name", "")),
                    namespace=(str(meta.get("namespace") or namespace) if namespaced else None),
                    obj=doc,
                )
            )
    return found


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.CSafeLoader):
    """``CSafeLoader`` resolving plain scalars from a memo: the resolver (Python, called by the
    C composer for every scalar) tries the regular expressions for the value's first character
    each time, and a manifest repeats its values (labels, names). Its tag depends on the value
    alone (the safe loader's implicit resolvers; no path resolvers, so none are tracked)."""

    _tags: ClassVar[dict[str, str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if not implicit[0]:  # quoted, or a block scalar: a string
            return _STR
        tag = self._tags.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            if len(value) <= 64:
                if len(self._tags) >= 4096:
                    self._tags.clear()
                self._tags[value] = tag
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


class _Unusual(Exception):
    """A node :func:`_plain_value` leaves to PyYAML's constructor."""


def load_documents(text: str) -> list[Any]:
    """``list(yaml.load_all(text, Loader=yaml.CSafeLoader))``, the same values built faster.

    PyYAML's constructor is Python, and generic (a generator per mapping, state kept for
    recursive documents): 0.5 ms of the 1.1 ms a hello-world manifest takes to load. The nodes
    are composed by the same C parser (tags resolved by :class:`_Loader`); plain mappings,
    sequences and strings are built here in one walk, other scalars (int, bool, null, float,
    timestamp...) by PyYAML's own constructor for their tag. A document with anything else
    (a merge key, a tag such as ``!!set`` or a custom one, an unhashable key) is loaded by
    PyYAML as before."""
    loader = _Loader(text)
    try:
        documents: list[Any] = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            try:
                documents.append(_plain_value(node, loader, {}))
            except (_Unusual, TypeError):
                documents.append(loader.construct_document(node))
        return documents
    finally:
        loader.dispose()


def _plain_value(node: Node, loader: _Loader, made: dict[int, Any]) -> Any:
    kind = type(node)
    if kind is ScalarNode:
        if node.tag == _STR:
            return node.value
        construct = loader.yaml_constructors.get(node.tag)
        if construct is None:
            raise _Unusual
        return construct(loader, node)
    # An alias is the same node again: the same object, as PyYAML builds it.
    done = made.get(id(node))
    if done is not None:
        return done
    if kind is MappingNode and node.tag == _MAP:
        mapping: dict[Any, Any] = {}
        made[id(node)] = mapping
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _Unusual
            key = _plain_value(key_node, loader, made)
            mapping[key] = _plain_value(value_node, loader, made)  # TypeError: unhashable
        return mapping
    if kind is SequenceNode and node.tag == _SEQ:
        sequence: list[Any] = []
        made[id(node)] = sequence
        sequence.extend(_plain_value(item, loader, made) for item in node.value)
        return sequence
    raise _Unusual


def _path(item: Desired) -> tuple[str, bool]:
    """The object's API path, and whether the kind's plural was guessed."""
    known = _KINDS.get(item.kind)
    plural = known[0] if known else _plural(item.kind)
    group = "/api/" if "/" not in item.api_version else "/apis/"
    base = f"{group}{item.api_version}"
    if item.namespace is not None:
        base += f"/namespaces/{item.namespace}"
    return f"{base}/{plural}/{item.name}", known is None


#: Helm's own field manager: a repair takes back the fields an edit outside Helm took.
FIELD_MANAGER = "helm"


def restore(client: Any, manifest: str, namespace: str, timeout: float) -> list[str]:
    """Apply the objects of ``manifest`` that are missing or differ live, server-side with
    Helm's field manager and ``force`` (an edit made with another manager loses its fields, as
    ``helm upgrade --force-conflicts`` would); the objects restored."""
    reader = ObjectReader(client, timeout)
    restored: list[str] = []
    for item in desired_objects(manifest, namespace):
        path, guessed = _path(item)
        live = reader.get(path)
        if live is None and guessed:
            continue
        if live is not None and not differences(item.obj, live):
            continue
        try:
            method, url, headers, body, post = client.param_serialize(
                method="PATCH",
                resource_path=path,
                query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                header_params={
                    "Content-Type": "application/apply-patch+yaml",
                    "Accept": "application/json",
                },
                body=json.dumps(item.obj),
                auth_settings=["BearerToken"],
            )
            response = client.call_api(method, url, headers, body, post, _request_timeout=timeout)
            status = int(response.status)
            text = response.read()
        except Exception as exc:
            raise BackendUnavailable(
                f"applying {item.label}: the Kubernetes API is unreachable ({type(exc).__name__})"
            ) from exc
        if status >= 400:
            try:
                message = str(json.loads(text or b"{}").get("message") or "")
            except ValueError:
                message = ""
            raise kube_error_class(status)(
                f"applying {item.label}: the Kubernetes API answered HTTP {status}: {message}"[:500]
            )
        restored.append(item.label)
    return restored


@dataclass(frozen=True, slots=True)
class LiveView:
    resources: tuple[ResourceStatus, ...]
    drift: tuple[DriftItem, ...]
    diffs: tuple[ResourceDiff, ...]


def inspect(
    reader: ObjectReader,
    manifest: str,
    namespace: str,
    *,
    with_diff: bool = False,
    begins: Callable[[], None] | None = None,
    watched: Container[str] = (),
) -> LiveView:
    """Each object of ``manifest``: its readiness and whether the live one differs.

    ``begins`` (the operation runner's cue, ``read_begins``): called once, right before the
    first GET of an object whose kind's plural is in ``watched`` (the collections the
    adapter's watch reports), or after the last GET when there is none. The objects of other
    kinds are read first: a change the watch reported before that moment is in what the GETs
    that follow return, and the later the moment, the fewer of an operation's own reports
    (its controllers' status writes, arriving while it reads) the reconciler reads again.
    The watched objects keep the manifest's order (workloads, slowest to be ready, come late
    in Helm's), each Service's Pods listed right after it: an order that reads a workload
    sooner made more first reads find it unready (P4: settle reads 354/419 against 314/330)."""
    items = desired_objects(manifest, namespace)
    located = [_path(item) for item in items]
    # The collection (plural) of each object: unwatched ones first (a stable sort).
    plurals = [path.rsplit("/", 2)[1] for path, _ in located]
    order = sorted(range(len(items)), key=lambda i: plurals[i] in watched)
    found: dict[int, dict[str, Any] | None] = {}
    selected: dict[int, list[dict[str, Any]]] = {}
    pods: dict[str, list[dict[str, Any]]] = {}
    for index in order:
        item = items[index]
        if begins is not None and plurals[index] in watched:
            begins()
            begins = None
        live = found[index] = reader.get(located[index][0])
        if live is not None and item.kind in NEEDS_PODS and item.namespace is not None:
            # Only the Pods its selector selects (the server filters): what endpoints are.
            selector = (live.get("spec") or {}).get("selector") or {}
            query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            key = f"{item.namespace}?{query}"
            if key not in pods:
                listed = (
                    reader.get(f"/api/v1/namespaces/{item.namespace}/pods", labelSelector=query)
                    if query
                    else {}
                ) or {}
                pods[key] = [p for p in listed.get("items") or [] if isinstance(p, dict)]
            selected[index] = pods[key]
    if begins is not None:
        begins()
    resources: list[ResourceStatus] = []
    drift: list[DriftItem] = []
    diffs: list[ResourceDiff] = []
    for index, item in enumerate(items):
        live, pod_list = found[index], selected.get(index)
        if live is None and located[index][1]:
            # A kind we could not place: say nothing rather than "deleted".
            resources.append(
                ResourceStatus(
                    kind=item.kind,
                    name=item.name,
                    namespace=item.namespace,
                    api_version=item.api_version,
                )
            )
            continue
        state = readiness(live, pod_list)
        resources.append(
            ResourceStatus(
                kind=item.kind,
                name=item.name,
                namespace=item.namespace,
                api_version=item.api_version,
                ready=state.ready,
                reason=state.reason,
                message=state.message,
                # What the ETSI face links: the claims its pods mount, the pods it selects.
                **(relations(live).fields() if live is not None else {}),
            )
        )
        where = {"kind": item.kind, "name": item.name, "namespace": item.namespace}
        if live is None:
            drift.append(DriftItem(change="missing", detail="deleted from the cluster", **where))
        else:
            paths = differences(item.obj, live)
            if paths:
                shown = ", ".join(paths[:5]) + (
                    f" and {len(paths) - 5} more" if len(paths) > 5 else ""
                )
                drift.append(DriftItem(change="modified", detail=f"changed: {shown}", **where))
        if with_diff:
            text = unified(item.obj, live, item.label)
            state_name: DiffState = (
                "missing" if live is None else ("modified" if text else "in-sync")
            )
            diffs.append(
                ResourceDiff(
                    kind=item.kind,
                    name=item.name,
                    namespace=item.namespace,
                    state=state_name,
                    diff=text,
                )
            )
    return LiveView(resources=tuple(resources), drift=tuple(drift), diffs=tuple(diffs))


def preview_diff(
    reader: ObjectReader, manifest: str, namespace: str, current: str
) -> list[ResourceDiff]:
    """What an update rendering ``manifest`` would change: per object against the live one;
    objects of the ``current`` manifest it no longer renders are ``removed``."""
    diffs: list[ResourceDiff] = []
    wanted = desired_objects(manifest, namespace)
    keys = {(d.kind, d.name, d.namespace) for d in wanted}
    for item in wanted:
        path, _ = _path(item)
        live = reader.get(path)
        text = unified(item.obj, live, item.label, live_first=True)
        state: DiffState = "added" if live is None else ("modified" if text else "in-sync")
        diffs.append(
            ResourceDiff(
                kind=item.kind, name=item.name, namespace=item.namespace, state=state, diff=text
            )
        )
    for item in desired_objects(current, namespace):
        if (item.kind, item.name, item.namespace) in keys:
            continue
        diffs.append(
            ResourceDiff(
                kind=item.kind,
                name=item.name,
                namespace=item.namespace,
                state="removed",
                diff=unified(item.obj, None, item.label),
            )
        )
    return diffs


__all__ = [
    "FIELD_MANAGER",
    "Desired",
    "LiveView",
    "desired_objects",
    "inspect",
    "load_documents",
    "preview_diff",
    "restore",
]

"""What a chart deploys, for the VNFD the gateway generates for a bare chart
(``DMSAdapter.describe_package``): the workloads Helm renders with the chart's default values,
and which values key sets each one's replicas.

The replica key is found by rendering twice: once with the defaults, once with a distinct
sentinel number written into every integer value whose key names replicas (``replicaCount``,
``frontend.replicas`` …). A workload whose rendered ``spec.replicas`` is a sentinel is set by
that key; any other workload is not scalable through the values. Both renders run in the
capped child (:func:`netweave_helm.rendering.render_preview`), never in the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from netweave.adapters import Workload

#: Kinds that run containers; the first three have a replica count.
SCALABLE_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")
WORKLOAD_KINDS = frozenset({*SCALABLE_KINDS, "DaemonSet", "Job", "CronJob"})
#: Candidate replica keys tried in one render (bounded: one sentinel each).
MAX_CANDIDATES = 64
#: The first sentinel: an unusual replica count no chart computes from its defaults.
_SENTINEL_BASE = 7919
_KEY_PART = re.compile(r"^[A-Za-z0-9_-]+$")


def replica_candidates(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of integer values whose key names replicas, in document order."""
    found: list[str] = []

    def walk(node: dict[str, Any], path: str, depth: int) -> None:
        if depth > 8:
            return
        for key, value in node.items():
            if len(found) >= MAX_CANDIDATES:
                return
            if not isinstance(key, str) or not _KEY_PART.match(key):
                continue
            dotted = f"{path}.{key}" if path else key
            if isinstance(value, dict):
                walk(value, dotted, depth + 1)
            elif (
                isinstance(value, int)
                and not isinstance(value, bool)
                and "replica" in key.lower()
                and "max" not in key.lower()
                and "min" not in key.lower()
            ):
                found.append(dotted)

    walk(values, prefix, 0)
    return found


def sentinels(candidates: list[str]) -> tuple[dict[str, Any], dict[int, str]]:
    """The values overlay setting each candidate to its own sentinel, and sentinel → key."""
    overlay: dict[str, Any] = {}
    by_value: dict[int, str] = {}
    for index, key in enumerate(candidates):
        value = _SENTINEL_BASE + index
        by_value[value] = key
        node = overlay
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return overlay, by_value


def _documents(manifest: str) -> Iterator[dict[str, Any]]:
    try:
        for document in yaml.load_all(manifest, Loader=yaml.CSafeLoader):
            if isinstance(document, dict):
                yield document
    except yaml.YAMLError:
        return


def _pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return {}
    if document.get("kind") == "CronJob":
        job = spec.get("jobTemplate")
        spec = job.get("spec") if isinstance(job, dict) else None
        if not isinstance(spec, dict):
            return {}
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else {}


def rendered_workloads(manifest: str) -> list[dict[str, Any]]:
    """Kind, name, replicas and containers of each workload in Helm's rendered manifest."""
    found = []
    for document in _documents(manifest):
        kind = document.get("kind")
        metadata = document.get("metadata")
        if kind not in WORKLOAD_KINDS or not isinstance(metadata, dict):
            continue
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            continue
        replicas: int | None = None
        if kind in SCALABLE_KINDS:
            spec = document.get("spec")
            raw = spec.get("replicas", 1) if isinstance(spec, dict) else 1
            replicas = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        containers = []
        for container in _pod_spec(document).get("containers") or []:
            if isinstance(container, dict):
                name_and_image = (
                    str(container.get("name") or ""),
                    str(container.get("image") or ""),
                )
                containers.append(name_and_image)
        found.append(
            {"kind": kind, "name": name, "replicas": replicas, "containers": tuple(containers)}
        )
    return found


def workloads(
    defaults: str, with_sentinels: str | None, by_value: dict[int, str]
) -> tuple[Workload, ...]:
    """The workloads of the default render, each with the key its replicas follow in the
    sentinel render (matched by kind and name)."""
    keys: dict[tuple[str, str], str] = {}
    if with_sentinels is not None:
        for item in rendered_workloads(with_sentinels):
            key = by_value.get(item["replicas"]) if item["replicas"] is not None else None
            if key is not None:
                keys[(item["kind"], item["name"])] = key
    return tuple(
        Workload(
            kind=item["kind"],
            name=item["name"],
            replicas=item["replicas"],
            replica_key=keys.get((item["kind"], item["name"])),
            containers=item["containers"],
        )
        for item in rendered_workloads(defaults)
    )


__all__ = [
    "SCALABLE_KINDS",
    "WORKLOAD_KINDS",
    "rendered_workloads",
    "replica_candidates",
    "sentinels",
    "workloads",
]

"""Which Flux deployments changed, from the cluster's own change feed (list+watch with
``resourceVersion`` and bookmarks, core's :mod:`netweave.adapters.kubewatch`), not a poll per
deployment. Watched, all namespaces:

* the HelmReleases and Kustomizations this adapter instance wrote (its labels): a condition
  written by helm- or kustomize-controller (``Ready=False``, ``Stalled``, a new revision), an
  edit, a deletion;
* the workloads Flux applied for them (Deployments, StatefulSets, DaemonSets, Jobs), mapped to
  their owner by the labels the controllers put on every object they apply
  (``helm.toolkit.fluxcd.io/name``/``namespace``, ``kustomize.toolkit.fluxcd.io/name``/
  ``namespace``): a workload deleted, or whose Pods stop being ready (its status changes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from netweave.adapters import BackendChanges
from netweave.adapters.kubewatch import Collection, watch_collections

from netweave_flux import manifests as m

#: The owner labels helm-controller and kustomize-controller set on the objects they apply.
OWNER_LABELS = {
    m.HELM_RELEASE.kind: "helm.toolkit.fluxcd.io",
    m.KUSTOMIZATION.kind: "kustomize.toolkit.fluxcd.io",
}
_WORKLOADS = (
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
    "/apis/batch/v1/jobs",
)


def _ref_of_deployment(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    kind, namespace, name = obj.get("kind"), meta.get("namespace"), meta.get("name")
    return f"{namespace}/{kind}/{name}" if kind and namespace and name else None


def _owner_ref(kind: str, prefix: str) -> Callable[[Mapping[str, Any]], str | None]:
    def ref_of(obj: Mapping[str, Any]) -> str | None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name, namespace = labels.get(f"{prefix}/name"), labels.get(f"{prefix}/namespace")
        return f"{namespace}/{kind}/{name}" if name and namespace else None

    return ref_of


def watch_flux(new_client: Callable[[], Any], instance: str) -> AsyncIterator[BackendChanges]:
    """Batches of deployment references (``<namespace>/<Kind>/<name>``) that may have changed,
    until cancelled. ``new_client`` makes the watch's own ``kubernetes`` ApiClient."""
    ours = ",".join(f"{k}={v}" for k, v in m.labels(instance).items())
    collections = [
        Collection(f"/apis/{kind.group}/{kind.version}/{kind.plural}", ours, _ref_of_deployment)
        for kind in m.DEPLOYMENT_KINDS.values()
    ]
    for kind, prefix in OWNER_LABELS.items():
        ref_of = _owner_ref(kind, prefix)
        collections += [Collection(path, f"{prefix}/name", ref_of) for path in _WORKLOADS]
    return watch_collections(new_client, collections, name="flux")


__all__ = ["OWNER_LABELS", "watch_flux"]

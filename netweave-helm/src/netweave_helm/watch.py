"""Which releases changed, from the cluster's own change feed: list+watch, not a poll per
release (core's :mod:`netweave.adapters.kubewatch` runs the feeds).

One feed per watched collection, all namespaces:

* Helm's release storage (Secrets or ConfigMaps labelled ``owner=helm``): a release installed,
  upgraded, rolled back or uninstalled by anyone (``helm`` itself included);
* the workload-bearing kinds Helm labels ``app.kubernetes.io/managed-by=Helm``
  (Deployments, StatefulSets, DaemonSets, Jobs, Services, PersistentVolumeClaims, ConfigMaps):
  an object deleted or edited, and every status change a controller writes (a Deployment whose
  Pods stop being ready changes its own status), mapped to its release by Helm's
  ``meta.helm.sh/release-name`` / ``release-namespace`` annotations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from netweave.adapters import BackendChanges
from netweave.adapters.kubewatch import Collection, watch_collections

from netweave_helm.cluster import ClusterAccess

MANAGED = "app.kubernetes.io/managed-by=Helm"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
WATCHED_OBJECTS = (
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
    "/apis/batch/v1/jobs",
    "/api/v1/services",
    "/api/v1/persistentvolumeclaims",
    "/api/v1/configmaps",
)


def _release_of_storage(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    name, namespace = labels.get("name"), meta.get("namespace")
    return f"{namespace}/{name}" if name and namespace else None


def _release_of_object(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    name = annotations.get(RELEASE_NAME)
    namespace = annotations.get(RELEASE_NAMESPACE) or meta.get("namespace")
    return f"{namespace}/{name}" if name and namespace else None


def watch_releases(cluster: ClusterAccess, storage_driver: str) -> AsyncIterator[BackendChanges]:
    """Batches of releases (``namespace/name``) that may have changed, until cancelled."""
    storage = "/api/v1/configmaps" if storage_driver == "configmap" else "/api/v1/secrets"
    collections = [Collection(storage, "owner=helm", _release_of_storage)]
    collections += [Collection(path, MANAGED, _release_of_object) for path in WATCHED_OBJECTS]
    # Its own connections: the watch streams stay open and must not take the shared client's.
    return watch_collections(cluster.separate_kube_client, collections, name="helm")


__all__ = ["MANAGED", "watch_releases"]

"""The table of served resources: built-in kinds plus resources added by CRDs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class ScalePaths:
    """JSON paths (dotted, without the leading dot) for the ``scale`` subresource."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str | None = "status.selector"


@dataclass
class Resource:
    """One served group/version/plural."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: ScalePaths | None = None
    extra_subresources: tuple[str, ...] = ()
    # Kinds whose registry strategy tracks metadata.generation.
    generation: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    # For custom resources: the version's openAPIV3Schema, and the CRD name.
    schema: dict[str, Any] | None = None
    crd: str | None = None
    storage_version: str | None = None
    # The group's preferred version (discovery lists it first).
    preferred: bool = True
    _validator: Any = field(default=None, repr=False, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        # Objects live once per group+plural, whatever version they are read in.
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def is_custom(self) -> bool:
        return self.crd is not None


def _r(
    gv: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    *,
    status: bool = False,
    scale: ScalePaths | None = None,
    generation: bool = False,
    cats: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> Resource:
    group, _, version = gv.rpartition("/")
    return Resource(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=cats,
        status=status,
        scale=scale,
        generation=generation,
        extra_subresources=extra,
        verbs=verbs,
    )


_WORKLOAD_SCALE = ScalePaths()
_ALL = ("all",)

BUILTIN: tuple[Resource, ...] = (
    _r("v1", "bindings", "Binding", verbs=("create",)),
    _r("v1", "configmaps", "ConfigMap", short=("cm",)),
    _r("v1", "endpoints", "Endpoints", short=("ep",)),
    _r("v1", "events", "Event", short=("ev",)),
    _r("v1", "limitranges", "LimitRange", short=("limits",)),
    _r("v1", "namespaces", "Namespace", False, ("ns",), status=True, extra=("finalize",)),
    _r("v1", "nodes", "Node", False, ("no",), status=True),
    _r("v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _r("v1", "persistentvolumes", "PersistentVolume", False, ("pv",), status=True),
    _r(
        "v1",
        "pods",
        "Pod",
        short=("po",),
        status=True,
        generation=True,
        cats=_ALL,
        extra=("log", "eviction", "ephemeralcontainers", "resize"),
    ),
    _r("v1", "podtemplates", "PodTemplate"),
    _r(
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        short=("rc",),
        status=True,
        scale=ScalePaths(label_selector=None),
        generation=True,
        cats=_ALL,
    ),
    _r("v1", "resourcequotas", "ResourceQuota", short=("quota",), status=True),
    _r("v1", "secrets", "Secret"),
    _r("v1", "serviceaccounts", "ServiceAccount", short=("sa",), extra=("token",)),
    _r("v1", "services", "Service", short=("svc",), status=True, cats=_ALL),
    _r("apps/v1", "controllerrevisions", "ControllerRevision"),
    _r(
        "apps/v1", "daemonsets", "DaemonSet", short=("ds",), status=True, generation=True, cats=_ALL
    ),
    _r(
        "apps/v1",
        "deployments",
        "Deployment",
        short=("deploy",),
        status=True,
        scale=_WORKLOAD_SCALE,
        generation=True,
        cats=_ALL,
    ),
    _r(
        "apps/v1",
        "replicasets",
        "ReplicaSet",
        short=("rs",),
        status=True,
        scale=_WORKLOAD_SCALE,
        generation=True,
        cats=_ALL,
    ),
    _r(
        "apps/v1",
        "statefulsets",
        "StatefulSet",
        short=("sts",),
        status=True,
        scale=_WORKLOAD_SCALE,
        generation=True,
        cats=_ALL,
    ),
    _r("batch/v1", "cronjobs", "CronJob", short=("cj",), status=True, generation=True, cats=_ALL),
    _r("batch/v1", "jobs", "Job", status=True, generation=True, cats=_ALL),
    _r(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=("hpa",),
        status=True,
        generation=True,
        cats=_ALL,
    ),
    _r(
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short=("pdb",),
        status=True,
        generation=True,
    ),
    _r(
        "networking.k8s.io/v1", "ingresses", "Ingress", short=("ing",), status=True, generation=True
    ),
    _r("networking.k8s.io/v1", "ingressclasses", "IngressClass", False),
    _r(
        "networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        short=("netpol",),
        generation=True,
    ),
    _r("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _r("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    _r("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _r(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        status=True,
        generation=True,
    ),
    _r("apiregistration.k8s.io/v1", "apiservices", "APIService", False, status=True),
    _r(
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        generation=True,
    ),
    _r(
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        generation=True,
    ),
    _r("coordination.k8s.io/v1", "leases", "Lease"),
    _r("discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
    _r("events.k8s.io/v1", "events", "Event", short=("ev",)),
    _r("scheduling.k8s.io/v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    _r("storage.k8s.io/v1", "storageclasses", "StorageClass", False, ("sc",)),
    _r("storage.k8s.io/v1", "csidrivers", "CSIDriver", False),
    _r("node.k8s.io/v1", "runtimeclasses", "RuntimeClass", False),
    _r(
        "certificates.k8s.io/v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        False,
        ("csr",),
        status=True,
    ),
)


class Registry:
    """Thread-safe table of served resources (discovery and routing read it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_gvp: dict[tuple[str, str, str], Resource] = {}
        # Bumped on every change so discovery documents can be cached.
        self.generation = 0
        for res in BUILTIN:
            self._by_gvp[(res.group, res.version, res.plural)] = res

    def add(self, res: Resource) -> None:
        with self._lock:
            self._by_gvp[(res.group, res.version, res.plural)] = res
            self.generation += 1

    def remove_crd(self, crd_name: str) -> list[Resource]:
        with self._lock:
            gone = [r for r in self._by_gvp.values() if r.crd == crd_name]
            for r in gone:
                del self._by_gvp[(r.group, r.version, r.plural)]
            if gone:
                self.generation += 1
            return gone

    def get(self, group: str, version: str, plural: str) -> Resource | None:
        with self._lock:
            return self._by_gvp.get((group, version, plural))

    def all(self) -> list[Resource]:
        with self._lock:
            return list(self._by_gvp.values())

    def by_kind(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for r in self._by_gvp.values():
                if r.group == group and r.version == version and r.kind == kind:
                    return r
        return None

    def for_storage(self, key: tuple[str, str]) -> Resource | None:
        """The resource of the preferred (storage) version for a storage key."""
        with self._lock:
            found = [r for r in self._by_gvp.values() if r.storage_key == key]
        for r in found:
            if r.storage_version is None or r.storage_version == r.version:
                return r
        return found[0] if found else None

    def groups(self) -> list[tuple[str, list[Resource]]]:
        """Non-core groups in a stable order, each with its resources."""
        with self._lock:
            res = list(self._by_gvp.values())
        order: dict[str, list[Resource]] = {}
        for r in res:
            if r.group:
                order.setdefault(r.group, []).append(r)
        return sorted(order.items())

"""Observing a Kubernetes-backed adapter: objects by owner label, replicas, readiness.

A Kubernetes-backed adapter marks what it owns (labels such as ``app.kubernetes.io/instance``
or annotations such as Helm's ``meta.helm.sh/release-name``); :class:`KubernetesObserver` finds
those objects in every namespace of the project's Kubernetes API emulator (through the
emulator's own API, no client needed) and reports each one's replicas, readiness and images. It
also implements :class:`~netweave.testing.kit.observe.KitWorkloads` with the emulator's
behaviour rules, so the readiness tests run too.

Adapters add what their backend keeps besides objects (Helm's release record, a Flux
HelmRelease, a values ConfigMap) with ``record=``: a callable ``(emulator, spec, objects)``
(``objects``: the raw owned objects found) returning an :class:`Observation` whose
``present``/``values``/``package_version``/``revision``/``ready``/``namespace`` are used; its
``objects`` are added to those found by the marks.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netweave.adapters import DeploymentSpec
from netweave.testing.kit.observe import (
    SLOW_READY_SECONDS,
    Observation,
    ObservedObject,
    WorkloadBehavior,
)

if TYPE_CHECKING:
    from netweave.testing.k8s.emulator import KubernetesEmulator

#: The kinds looked at by default (Pods and ReplicaSets are made by controllers from the
#: workloads, so they are not what the adapter applied).
DEFAULT_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
)

Record = Callable[["KubernetesEmulator", DeploymentSpec, list[dict[str, Any]]], Observation]


def _fill(template: str, spec: DeploymentSpec) -> str:
    return template.format(
        name=spec.name, namespace=spec.namespace, deployment_id=spec.deployment_id
    )


def _condition(obj: Mapping[str, Any], kind: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def workload_ready(obj: Mapping[str, Any]) -> bool | None:
    """Readiness of a workload as kubectl rollout status judges it; ``None`` for non-workloads."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    current = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 1)
    if kind in ("Deployment", "StatefulSet"):
        want = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        if kind == "Deployment" and _condition(obj, "Progressing") == "False":
            return False
        return current and ready >= want
    if kind == "DaemonSet":
        return current and int(status.get("numberReady") or 0) >= int(
            status.get("desiredNumberScheduled") or 0
        )
    if kind == "Job":
        return int(status.get("succeeded") or 0) >= 1
    return None


def observed_object(obj: Mapping[str, Any]) -> ObservedObject:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    kind = str(obj.get("kind"))
    replicas: int | None = None
    if kind in ("Deployment", "StatefulSet"):
        replicas = int(spec.get("replicas", 1))
    pod = ((spec.get("template") or {}).get("spec")) or {}
    images = tuple(str(c.get("image")) for c in pod.get("containers") or () if isinstance(c, dict))
    return ObservedObject(
        kind=kind,
        name=str(meta.get("name")),
        namespace=meta.get("namespace"),
        replicas=replicas,
        ready=workload_ready(obj),
        images=images,
        version=meta.get("resourceVersion"),
    )


class KubernetesObserver:
    """Observe a deployment in the Kubernetes API emulator by the marks its adapter sets.

    ``labels`` / ``annotations`` map a key to a template with ``{name}``, ``{namespace}`` and
    ``{deployment_id}`` (from the spec the kit sent), e.g.
    ``{"app.kubernetes.io/instance": "{name}"}``. Objects are searched in every namespace.
    """

    def __init__(
        self,
        emulator: KubernetesEmulator,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        kinds: Sequence[tuple[str, str]] = DEFAULT_KINDS,
        record: Record | None = None,
    ) -> None:
        if not labels and not annotations:
            raise ValueError("KubernetesObserver needs the owner labels or annotations to look for")
        self.emulator = emulator
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.kinds = tuple(kinds)
        self.record = record

    def objects(self, spec: DeploymentSpec) -> list[dict[str, Any]]:
        """The raw objects carrying the deployment's marks, in every namespace."""
        selector = ",".join(f"{k}={_fill(v, spec)}" for k, v in self.labels.items()) or None
        wanted = {k: _fill(v, spec) for k, v in self.annotations.items()}
        found: list[dict[str, Any]] = []
        for api_version, kind in self.kinds:
            for obj in self.emulator.list(api_version, kind, None, selector):
                meta = obj.get("metadata") or {}
                if meta.get("deletionTimestamp"):
                    continue
                notes = meta.get("annotations") or {}
                if all(notes.get(k) == v for k, v in wanted.items()):
                    found.append(obj)
        return found

    async def observe(self, spec: DeploymentSpec) -> Observation:
        raw = self.objects(spec)
        objects = tuple(observed_object(o) for o in raw)
        base = Observation(present=bool(objects), objects=objects)
        if self.record is None:
            return base
        extra = self.record(self.emulator, spec, raw)
        return dataclasses.replace(
            extra, present=extra.present or base.present, objects=objects + extra.objects
        )

    @contextlib.contextmanager
    def workloads(self, spec: DeploymentSpec, behavior: WorkloadBehavior) -> Iterator[None]:
        """The emulator's behaviour rules for every workload whose name contains the
        deployment's name (Pods follow their owners)."""
        if behavior == "slow":
            rule = self.emulator.set_behavior(
                f"*{spec.name}*", "ready", ready_after=SLOW_READY_SECONDS
            )
        else:
            rule = self.emulator.set_behavior(f"*{spec.name}*", "fail")
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                self.emulator.controllers.rules.remove(rule)


__all__ = ["DEFAULT_KINDS", "KubernetesObserver", "observed_object", "workload_ready"]

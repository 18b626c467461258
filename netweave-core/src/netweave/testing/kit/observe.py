"""The kit's eyes on the backend: what a deployment left there, read from the backend itself.

Every kit test that changes something checks the backend afterwards through the ``observer``
fixture, never through what the adapter reports about itself. An observer finds a deployment by
what the kit asked for (its name, namespace and deployment id: the :class:`DeploymentSpec`), not
by the adapter's ``backend_ref``, so it also sees what a failed create left behind and objects
put in the wrong namespace.

An observer answers with an :class:`Observation`: the objects the backend holds for the
deployment (kind, name, namespace, desired replicas, readiness, images), the values the backend
applied, the package version and revision it runs, and whether it is ready. A backend that keeps
no objects of its own (an orchestrator's records) reports what its records say.

Optionally an observer also implements :class:`KitWorkloads` (make the deployment's workloads
slow to become ready, or fail) for the readiness tests; otherwise those tests skip, naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from netweave.adapters import DeploymentSpec

#: What :meth:`KitWorkloads.workloads` can make a deployment's workloads do.
WorkloadBehavior = Literal["slow", "fail"]

#: Seconds a ``slow`` workload stays unready: long enough for a poll to see it, short enough
#: to keep the kit fast.
SLOW_READY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ObservedObject:
    """One object the backend holds for a deployment."""

    kind: str
    name: str
    namespace: str | None = None
    #: Desired replicas of a workload (``spec.replicas``); ``None`` for other objects.
    replicas: int | None = None
    #: Readiness as the backend reports it; ``None`` for objects without a readiness notion.
    ready: bool | None = None
    images: tuple[str, ...] = ()
    #: The backend's change counter of the object (Kubernetes ``resourceVersion``), so the kit
    #: can tell that a retried call changed nothing.
    version: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.kind, self.name, self.namespace)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the backend holds for one deployment. ``Observation()`` means nothing at all."""

    #: The backend has a record of the deployment (a Helm release, an Application, an NS
    #: instance …) even if it has no objects.
    present: bool = False
    objects: tuple[ObservedObject, ...] = ()
    #: The values the backend applied, as it holds them; ``None`` when it keeps none readable.
    values: Mapping[str, Any] | None = None
    package_version: str | None = None
    revision: int | None = None
    #: The namespace the backend's record puts the deployment in (for backends without objects).
    namespace: str | None = None
    #: Overall readiness; ``None`` means: computed from the objects.
    ready: bool | None = None
    #: Free text shown in assertion messages (the backend's own state words).
    detail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing of the deployment is left in the backend."""
        return not self.present and not self.objects

    @property
    def is_ready(self) -> bool:
        if self.ready is not None:
            return self.ready
        flags = [o.ready for o in self.objects if o.ready is not None]
        return bool(flags) and all(flags)

    @property
    def workloads(self) -> tuple[ObservedObject, ...]:
        return tuple(o for o in self.objects if o.replicas is not None)

    @property
    def namespaces(self) -> set[str]:
        found = {o.namespace for o in self.objects if o.namespace}
        if self.namespace:
            found.add(self.namespace)
        return found

    def describe(self) -> str:
        if self.empty:
            return "nothing"
        objects = ", ".join(
            f"{o.kind}/{o.name}"
            + (f" in {o.namespace}" if o.namespace else "")
            + (f" replicas={o.replicas}" if o.replicas is not None else "")
            + (f" ready={o.ready}" if o.ready is not None else "")
            for o in self.objects
        )
        parts = [
            f"objects [{objects}]",
            f"values {dict(self.values) if self.values is not None else None!r}",
            f"package version {self.package_version}",
            f"revision {self.revision}",
        ]
        if self.namespace:
            parts.append(f"namespace {self.namespace}")
        if self.detail:
            parts.append(self.detail)
        return "; ".join(parts)


@runtime_checkable
class KitObserver(Protocol):
    """Answers from the backend itself what is deployed for a deployment the kit asked for."""

    async def observe(self, spec: DeploymentSpec) -> Observation:
        """Everything the backend holds for ``spec`` (found by its name/id in any namespace)."""
        ...


@runtime_checkable
class KitWorkloads(Protocol):
    """Optional, on an observer: steer how the deployment's workloads behave in the backend."""

    def workloads(
        self, spec: DeploymentSpec, behavior: WorkloadBehavior
    ) -> AbstractContextManager[None]:
        """Inside the block, workloads of ``spec`` are ``slow`` (ready only after
        :data:`SLOW_READY_SECONDS`) or ``fail`` (never ready, reported failed by the backend)."""
        ...


def flatten(values: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (for messages and exact comparisons)."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def contains(values: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> bool:
    """Every key of ``expected`` (recursively) is in ``values`` with an equal value.

    Scalars compare as text too, so a backend that keeps ``"2"`` for ``2`` (string-typed values,
    as some orchestrators do) still matches.
    """
    if values is None:
        return False
    have = flatten(values)
    for key, want in flatten(expected).items():
        if key not in have:
            return False
        got = have[key]
        if got != want and str(got).lower() != str(want).lower():
            return False
    return True


def names_in(observation: Observation, deployment_name: str) -> set[tuple[str, str]]:
    """The (kind, name) of each object with the deployment's name replaced by ``{name}``, to
    compare the objects of two deployments of one package."""
    return {(o.kind, o.name.replace(deployment_name, "{name}")) for o in observation.objects}


def iter_keys(observation: Observation) -> Iterator[tuple[str, str, str | None]]:
    for obj in observation.objects:
        yield obj.key


__all__ = [
    "SLOW_READY_SECONDS",
    "KitObserver",
    "KitWorkloads",
    "Observation",
    "ObservedObject",
    "WorkloadBehavior",
    "contains",
    "flatten",
    "names_in",
]

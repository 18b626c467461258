"""Where netweave's Flux objects are written: the cluster (``cluster`` mode) or Git (``git`` mode).

Both stores hold the *desired* objects; the state Flux reports is always read from the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from netweave.errors import AlreadyExists, Conflict, InvalidInput, NotFound

from netweave_flux.kube import Kube
from netweave_flux.manifests import Kind, selector

#: Mutations return False when nothing needs writing (e.g. an idempotent retry).
Mutation = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Change:
    """What a write is for (Git commit messages; logs)."""

    action: str
    operation: str = "-"


class ObjectStore(Protocol):
    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]: ...

    async def create(self, obj: dict[str, Any], change: Change) -> dict[str, Any]: ...

    async def mutate(
        self, kind: Kind, namespace: str, name: str, fn: Mutation, change: Change
    ) -> dict[str, Any]: ...

    async def delete(self, kind: Kind, namespace: str, name: str, change: Change) -> bool: ...

    async def close(self) -> None: ...


class ClusterStore:
    """Desired objects are the live custom resources."""

    #: Read-modify-write attempts when a controller's status write moved the resourceVersion.
    CONFLICT_ATTEMPTS = 8

    def __init__(self, kube: Kube, instance: str) -> None:
        self.kube = kube
        self.instance = instance

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get(kind, namespace, name)

    async def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        return await self.kube.list_objects(kind, namespace, selector(self.instance))

    async def create(self, obj: dict[str, Any], change: Change) -> dict[str, Any]:
        try:
            return await self.kube.create(obj)
        except NotFound as exc:
            # Creating into a namespace that does not exist answers 404.
            namespace = obj["metadata"]["namespace"]
            raise InvalidInput(
                f"namespace {namespace!r} does not exist in the cluster; create it first",
                details={"field": "namespace"},
            ) from exc

    async def mutate(
        self, kind: Kind, namespace: str, name: str, fn: Mutation, change: Change
    ) -> dict[str, Any]:
        last: Conflict | None = None
        for _ in range(self.CONFLICT_ATTEMPTS):
            cur = await self.kube.get(kind, namespace, name)
            if cur is None or (cur.get("metadata") or {}).get("deletionTimestamp"):
                raise NotFound(f"{kind.kind} {namespace}/{name} does not exist")
            if not fn(cur):
                return cur
            try:
                return await self.kube.replace(cur)
            except AlreadyExists:
                raise
            except Conflict as exc:
                last = exc  # someone wrote in between: re-read and re-apply
        raise Conflict(
            f"{kind.kind} {namespace}/{name} kept changing while netweave updated it"
        ) from last

    async def delete(self, kind: Kind, namespace: str, name: str, change: Change) -> bool:
        return await self.kube.delete(kind, namespace, name)

    async def close(self) -> None:
        return None


__all__ = ["Change", "ClusterStore", "Mutation", "ObjectStore"]

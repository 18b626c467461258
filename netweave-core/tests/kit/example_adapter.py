"""A small complete adapter against an in-process backend: the kit's reference user.

It shows the shape every adapter has — a backend client (here ``ExampleBackend``, a dict), a
status vocabulary mapped onto the gateway's with an explicit table, and backend errors mapped
onto ``netweave.errors`` — and lets the kit's own tests build broken variants of it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netweave.adapters import (
    AdapterConfig,
    AdapterHealth,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import AlreadyExists, BackendUnavailable, InvalidInput, NotFound
from netweave.models import DeploymentStatus, LogOptions, Preview, RevisionEntry
from netweave.testing.kit import Observation, ObservedObject


class BackendDown(Exception):
    """What the in-process backend raises while it is 'unreachable'."""


class BackendMissing(KeyError):
    """The backend's own not-found error (the adapter must map it)."""


@dataclass
class Release:
    name: str
    namespace: str
    chart: str
    version: str
    # The backend's vocabulary, like Helm's: deployed, superseded, failed, uninstalling.
    revisions: list[dict[str, Any]] = field(default_factory=list)
    #: The idempotency key of the operation step that created it (a retry returns the result).
    created_by: str = ""


class ExampleBackend:
    def __init__(self) -> None:
        self.charts: dict[str, dict[str, Any]] = {}
        self.releases: dict[str, Release] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise BackendDown("connection refused")

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.down = True
        try:
            yield
        finally:
            self.down = False

    def get_release(self, key: str) -> Release:
        self._check()
        try:
            return self.releases[key]
        except KeyError:
            raise BackendMissing(key) from None


#: The backend's release states → the gateway's. Total: anything else is UNKNOWN.
STATUS_MAP = {
    "deployed": DeploymentStatus.DEPLOYED,
    "superseded": DeploymentStatus.DEPLOYED,
    "failed": DeploymentStatus.FAILED,
    "uninstalling": DeploymentStatus.DELETING,
}


#: The object kinds a chart of the example backend holds: the archive's text names them
#: (``b"ConfigMap Deployment"``); anything else holds one Deployment.
DEFAULT_OBJECTS = ("Deployment",)


def chart_objects(archive: bytes) -> tuple[str, ...]:
    words = tuple(w for w in archive.decode(errors="replace").split() if w[:1].isupper())
    return words or DEFAULT_OBJECTS


class ExampleObserver:
    """The kit's view of the example backend: its releases, read directly (not through the
    adapter), and the objects each revision "runs" (one per kind, named after the release;
    a Deployment wants ``replicaCount`` replicas)."""

    def __init__(self, backend: ExampleBackend) -> None:
        self.backend = backend

    async def observe(self, spec: DeploymentSpec) -> Observation:
        found = [r for r in self.backend.releases.values() if r.name == spec.name]
        if not found:
            return Observation()
        release = found[0]
        current = release.revisions[-1]
        objects = tuple(
            ObservedObject(
                kind=kind,
                name=f"{release.name}-{kind.lower()}",
                namespace=release.namespace,
                replicas=int(current["values"].get("replicaCount", 1))
                if kind == "Deployment"
                else None,
                ready=current["state"] == "deployed" if kind == "Deployment" else None,
                version=str(current["revision"]),
            )
            for kind in current["objects"]
        )
        return Observation(
            present=True,
            objects=objects,
            values=copy.deepcopy(current["values"]),
            package_version=current["version"],
            revision=current["revision"],
            namespace=release.namespace,
            detail=f"state {current['state']}",
        )


class ExampleAdapter(DMSAdapter):
    TYPE = "example"
    DISTRIBUTION = "netweave-example-not-published"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PACKAGE_MANAGEMENT,
            Capability.PACKAGE_LISTING,
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.DEPLOYMENT_UPDATE,
            Capability.ROLLBACK,
            Capability.SCALING,
            Capability.HISTORY,
            Capability.LOGS,
            Capability.DRY_RUN,
        }
    )
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({"example"})

    def __init__(self, name: str, config: AdapterConfig, backend: ExampleBackend) -> None:
        super().__init__(name, config)
        self.backend = backend

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except BackendDown as exc:
            raise BackendUnavailable(f"example backend unreachable: {exc}") from exc
        except BackendMissing as exc:
            raise NotFound(f"no such object in the example backend: {exc.args[0]}") from exc

    def map_status(self, state: str) -> DeploymentStatus:
        return STATUS_MAP.get(state, DeploymentStatus.UNKNOWN)

    async def _health(self) -> AdapterHealth:
        with self._mapped():
            self.backend._check()
        return AdapterHealth(healthy=True)

    # -- packages --------------------------------------------------------------------------

    def _package(self, ref: str, chart: dict[str, Any]) -> PackageInfo:
        return PackageInfo(
            backend_ref=ref,
            name=chart["name"],
            version=chart["version"],
            package_type="example",
            checksum=chart.get("checksum"),
            extensions={"size": chart["size"]},
        )

    async def _list_packages(self) -> list[PackageInfo]:
        with self._mapped():
            self.backend._check()
            return [self._package(ref, c) for ref, c in sorted(self.backend.charts.items())]

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        with self._mapped():
            self.backend._check()
            if backend_ref not in self.backend.charts:
                raise BackendMissing(backend_ref)
            return self._package(backend_ref, self.backend.charts[backend_ref])

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        ref = f"{upload.name}:{upload.version}"
        with self._mapped():
            self.backend._check()
            if ref in self.backend.charts:
                raise AlreadyExists(f"package {ref} exists")
            size = upload.archive.stat().st_size if upload.archive else 0
            self.backend.charts[ref] = {
                "name": upload.name,
                "version": upload.version,
                "size": size,
                "checksum": upload.checksum,
                "objects": chart_objects(upload.archive.read_bytes() if upload.archive else b""),
            }
            return self._package(ref, self.backend.charts[ref])

    async def _delete_package(self, backend_ref: str) -> None:
        with self._mapped():
            self.backend._check()
            if self.backend.charts.pop(backend_ref, None) is None:
                raise BackendMissing(backend_ref)

    # -- deployments -----------------------------------------------------------------------

    def _info(self, key: str, release: Release) -> DeploymentInfo:
        current = release.revisions[-1]
        return DeploymentInfo(
            backend_ref=key,
            status=self.map_status(current["state"]),
            backend_status=current["state"],
            revision=current["revision"],
            package_version=current["version"],
            values=copy.deepcopy(current["values"]),
        )

    def _push(self, release: Release, version: str, values: dict[str, Any]) -> None:
        for old in release.revisions:
            if old["state"] == "deployed":
                old["state"] = "superseded"
        chart = self.backend.charts.get(f"{release.chart}:{version}") or {}
        release.revisions.append(
            {
                "revision": len(release.revisions) + 1,
                "state": "deployed",
                "version": version,
                "values": copy.deepcopy(values),
                "objects": list(chart.get("objects") or DEFAULT_OBJECTS),
            }
        )

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        key = f"{spec.namespace}/{spec.name}"
        with self._mapped():
            self.backend._check()
            existing = self.backend.releases.get(key)
            if existing is not None and existing.created_by == ctx.idempotency_key:
                return self._info(key, existing)  # the same step retried: its first result
            if existing is not None:
                raise AlreadyExists(f"release {key} exists")
            release = Release(spec.name, spec.namespace, spec.package.name, spec.package.version)
            release.created_by = ctx.idempotency_key
            self._push(release, spec.package.version, spec.values)
            self.backend.releases[key] = release
            return self._info(key, release)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        with self._mapped():
            return self._info(backend_ref, self.backend.get_release(backend_ref))

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        with self._mapped():
            release = self.backend.get_release(backend_ref)
            current = release.revisions[-1]
            values = copy.deepcopy(current["values"])
            if change.values is not None:
                values = (
                    change.values
                    if change.values_mode == "replace"
                    else {**values, **change.values}
                )
            version = change.package.version if change.package else current["version"]
            self._push(release, version, values)
            return self._info(backend_ref, release)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        with self._mapped():
            self.backend.get_release(backend_ref)
            del self.backend.releases[backend_ref]

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        return await self._update_deployment(
            backend_ref, DeploymentChange(values={"replicaCount": replicas}), ctx
        )

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        with self._mapped():
            release = self.backend.get_release(backend_ref)
            target = revision or release.revisions[-1]["revision"] - 1
            match = [r for r in release.revisions if r["revision"] == target]
            if not match:
                raise InvalidInput(f"release {backend_ref} has no revision {target}")
            self._push(release, match[0]["version"], match[0]["values"])
            return self._info(backend_ref, release)

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        with self._mapped():
            release = self.backend.get_release(backend_ref)
            return [
                RevisionEntry(
                    revision=r["revision"],
                    status=self.map_status(r["state"]).value
                    if r["state"] != "superseded"
                    else "SUPERSEDED",
                    package_version=r["version"],
                )
                for r in release.revisions
            ]

    async def _preview_deployment(
        self, spec: DeploymentSpec, change: DeploymentChange | None
    ) -> Preview:
        values = {**spec.values, **((change.values or {}) if change else {})}
        manifest = f"kind: ConfigMap\nmetadata:\n  name: {spec.name}\ndata: {values!r}\n"
        return Preview(manifests={f"{spec.package.name}/templates/cm.yaml": manifest})

    async def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        with self._mapped():
            release = self.backend.get_release(backend_ref)
        lines = [f"{release.name}: revision {r['revision']} started" for r in release.revisions]
        lines += [f"{release.name}: line {i}" for i in range(10)]
        if options.tail_lines is not None:
            lines = lines[-options.tail_lines :] if options.tail_lines else []
        for line in lines:
            yield line

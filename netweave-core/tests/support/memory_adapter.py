"""A complete in-memory ``DMSAdapter`` for the core's own tests (not shipped, no entry point).

Everything a backend would hold lives in dicts: packages, releases with revisions, logs.
Knobs let a test make a specific call fail, slow down or hang:

* ``adapter.fail("create_deployment", BackendUnavailable("down"), times=2)``
* ``adapter.delay["get_package"] = 0.5``
* ``gate = adapter.hang("delete_deployment")`` … ``gate.set()`` to let it go on (a
  ``threading.Event``: the test client runs the app in another thread and event loop)
* ``adapter.settle("update_deployment", [DEPLOYING, FAILED], "image pull failed")``: the next
  change that hook makes leaves the release in the first status, and each later read of it moves
  on to the next (the last one stays): a backend that works asynchronously and may fail
* ``adapter.calls`` records ``(hook, backend_ref_or_name, OperationContext | None)``
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from netweave.errors import AlreadyExists, InvalidInput, NotFound
from netweave.models import DeploymentStatus, LogOptions, Preview, RevisionEntry

#: Uploads whose archive starts with this are "corrupt" (the adapter's validation refuses them).
CORRUPT_MARKER = b"CORRUPT"
#: A held call polls its gate; bounded so a forgotten gate cannot hang a test run.
GATE_POLL = 0.005
GATE_MAX_POLLS = 6000
#: Bounded wait of a following log stream between lines (tests append lines meanwhile).
FOLLOW_POLL = 0.02
FOLLOW_MAX_POLLS = 500


@dataclass
class Release:
    name: str
    namespace: str
    package: PackageInfo
    values: dict[str, Any]
    status: DeploymentStatus = DeploymentStatus.DEPLOYED
    revisions: list[RevisionEntry] = field(default_factory=list)
    created_key: str | None = None
    message: str | None = None
    #: Statuses later reads move through (see ``MemoryAdapter.settle``).
    coming: list[DeploymentStatus] = field(default_factory=list)

    @property
    def revision(self) -> int:
        return self.revisions[-1].revision if self.revisions else 0


class MemoryAdapter(DMSAdapter):
    TYPE: ClassVar[str] = "memory"
    DISTRIBUTION: ClassVar[str] = "netweave-core"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(Capability)
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({"memory", "helm"})
    DESCRIPTION: ClassVar[str] = "in-memory test adapter"

    def __init__(self, name: str = "memory", config: AdapterConfig | None = None) -> None:
        super().__init__(name, config or AdapterConfig())
        self.packages: dict[str, PackageInfo] = {}
        self.releases: dict[str, Release] = {}
        self.logs: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str, OperationContext | None]] = []
        self.delay: dict[str, float] = {}
        self.healthy = True
        self.start_error: Exception | None = None
        self.started = False
        self._failures: dict[str, list[BaseException]] = {}
        self._gates: dict[str, threading.Event] = {}
        self._scripts: dict[str, tuple[list[DeploymentStatus], str | None]] = {}

    # -- knobs -------------------------------------------------------------------------------

    def fail(self, hook: str, error: BaseException, *, times: int = 1) -> None:
        self._failures.setdefault(hook, []).extend([error] * times)

    def settle(
        self, hook: str, statuses: list[DeploymentStatus], message: str | None = None
    ) -> None:
        self._scripts[hook] = (list(statuses), message)

    def _scripted(self, hook: str, release: Release) -> None:
        """Apply a ``settle`` script to the release ``hook`` just changed (once)."""
        script = self._scripts.pop(hook, None)
        if script is None:
            if release.status is not DeploymentStatus.SUSPENDED:
                release.status = DeploymentStatus.DEPLOYED
            release.message, release.coming = None, []
            return
        statuses, message = script
        release.status, release.coming, release.message = statuses[0], statuses[1:], message

    def hang(self, hook: str) -> threading.Event:
        gate = threading.Event()
        self._gates[hook] = gate
        return gate

    def calls_to(self, hook: str) -> list[tuple[str, str, OperationContext | None]]:
        return [c for c in self.calls if c[0] == hook]

    async def _enter(self, hook: str, ref: str, ctx: OperationContext | None = None) -> None:
        self.calls.append((hook, ref, ctx))
        if hook in self.delay:
            await asyncio.sleep(self.delay[hook])
        gate = self._gates.get(hook)
        if gate is not None:
            for _ in range(GATE_MAX_POLLS):
                if gate.is_set():
                    break
                await asyncio.sleep(GATE_POLL)
            else:
                raise TimeoutError(f"{hook} was held longer than the test allows")
        pending = self._failures.get(hook)
        if pending:
            raise pending.pop(0)

    # -- lifecycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        await self._enter("start", self.name)
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def _stop(self) -> None:
        self.started = False

    async def _health(self) -> AdapterHealth:
        await self._enter("health", self.name)
        return AdapterHealth(healthy=self.healthy, message=None if self.healthy else "down")

    # -- packages ----------------------------------------------------------------------------

    async def _list_packages(self) -> list[PackageInfo]:
        await self._enter("list_packages", "")
        return list(self.packages.values())

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        await self._enter("get_package", backend_ref)
        try:
            return self.packages[backend_ref]
        except KeyError:
            raise NotFound(f"no package {backend_ref}") from None

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        ref = f"{upload.name}:{upload.version}"
        await self._enter("upload_package", ref)
        if ref in self.packages:
            raise AlreadyExists(f"package {ref} exists in the backend")
        extensions: dict[str, Any] = {"memory.source": "upload"}
        checksum = upload.checksum
        if upload.archive is not None:
            data = await asyncio.to_thread(upload.archive.read_bytes)
            if data.startswith(CORRUPT_MARKER):
                raise InvalidInput("the archive is corrupt", details={"field": "chart"})
            digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
            if checksum is not None and checksum != digest:
                raise InvalidInput("checksum mismatch", details={"field": "chart"})
            checksum = digest
            extensions["memory.size"] = len(data)
        else:
            extensions["memory.source"] = "uri"
        info = PackageInfo(
            backend_ref=ref,
            name=upload.name,
            version=upload.version,
            package_type=upload.package_type or "memory",
            package_uri=upload.package_uri,
            checksum=checksum,
            description=upload.description,
            provider=upload.provider,
            extensions=extensions,
            warnings=("icon is recommended",) if upload.archive is not None else (),
        )
        self.packages[ref] = info
        return info

    async def _delete_package(self, backend_ref: str) -> None:
        await self._enter("delete_package", backend_ref)
        if self.packages.pop(backend_ref, None) is None:
            raise NotFound(f"no package {backend_ref}")

    def add_backend_package(self, name: str, version: str) -> PackageInfo:
        """A package that appears in the backend without going through the gateway."""
        info = PackageInfo(
            backend_ref=f"{name}:{version}",
            name=name,
            version=version,
            package_type="memory",
            extensions={"memory.source": "backend"},
        )
        self.packages[info.backend_ref] = info
        return info

    # -- deployments -------------------------------------------------------------------------

    def _info(self, ref: str, release: Release) -> DeploymentInfo:
        return DeploymentInfo(
            backend_ref=ref,
            status=release.status,
            revision=release.revision,
            message=release.message,
            backend_status=release.status.value.lower(),
            package_version=release.package.version,
            values=dict(release.values),
            updated_at=datetime.now(UTC),
            extensions={"memory.namespace": release.namespace},
        )

    def _release(self, ref: str) -> Release:
        try:
            return self.releases[ref]
        except KeyError:
            raise NotFound(f"no release {ref}") from None

    def _revise(self, release: Release, description: str) -> None:
        release.revisions.append(
            RevisionEntry(
                revision=release.revision + 1,
                status="deployed",
                package_version=release.package.version,
                description=description,
                deployed_at=datetime.now(UTC),
                values=dict(release.values),
            )
        )
        for entry in release.revisions[:-1]:
            entry.status = "superseded"

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        ref = f"{spec.namespace}/{spec.name}"
        await self._enter("create_deployment", ref, ctx)
        existing = self.releases.get(ref)
        if existing is not None:
            if existing.created_key == ctx.idempotency_key:
                return self._info(ref, existing)  # the same step again (resume / retry)
            raise AlreadyExists(f"release {ref} exists")
        if spec.package.backend_ref not in self.packages:
            raise NotFound(f"package {spec.package.backend_ref} is not in the backend")
        release = Release(
            name=spec.name,
            namespace=spec.namespace,
            package=spec.package,
            values=dict(spec.values),
            created_key=ctx.idempotency_key,
        )
        self._revise(release, "install")
        self._scripted("create_deployment", release)
        self.releases[ref] = release
        self.logs.setdefault(ref, [f"{spec.name} started", f"{spec.name} ready"])
        return self._info(ref, release)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        await self._enter("get_deployment", backend_ref)
        release = self._release(backend_ref)
        info = self._info(backend_ref, release)
        if release.coming:
            release.status = release.coming.pop(0)
        return info

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        await self._enter("update_deployment", backend_ref, ctx)
        release = self._release(backend_ref)
        if change.values is not None:
            release.values = (
                dict(change.values)
                if change.values_mode == "replace"
                else {**release.values, **change.values}
            )
        if change.package is not None:
            release.package = change.package
        if change.suspend is not None:
            release.status = (
                DeploymentStatus.SUSPENDED if change.suspend else DeploymentStatus.DEPLOYED
            )
        self._revise(release, "upgrade")
        self._scripted("update_deployment", release)
        return self._info(backend_ref, release)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        await self._enter("delete_deployment", backend_ref, ctx)
        self._release(backend_ref)
        del self.releases[backend_ref]

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        await self._enter("scale_deployment", backend_ref, ctx)
        release = self._release(backend_ref)
        release.values = {**release.values, "replicaCount": replicas}
        self._revise(release, f"scale to {replicas}")
        self._scripted("scale_deployment", release)
        return self._info(backend_ref, release)

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        await self._enter("rollback_deployment", backend_ref, ctx)
        release = self._release(backend_ref)
        if revision == 0:
            if len(release.revisions) < 2:
                raise InvalidInput("no previous revision", details={"field": "revision"})
            target = release.revisions[-2]
        else:
            matches = [r for r in release.revisions if r.revision == revision]
            if not matches:
                raise NotFound(f"release {backend_ref} has no revision {revision}")
            target = matches[0]
        release.values = dict(target.values or {})
        if target.package_version and target.package_version != release.package.version:
            release.package = next(
                (p for p in self.packages.values() if p.version == target.package_version),
                release.package,
            )
        self._revise(release, f"rollback to {target.revision}")
        self._scripted("rollback_deployment", release)
        return self._info(backend_ref, release)

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        await self._enter("get_history", backend_ref)
        return [replace_entry(r) for r in self._release(backend_ref).revisions]

    async def _preview_deployment(
        self, spec: DeploymentSpec, change: DeploymentChange | None
    ) -> Preview:
        await self._enter("preview_deployment", spec.name)
        values = dict(spec.values)
        if change is not None and change.values is not None:
            values = (
                dict(change.values)
                if change.values_mode == "replace"
                else {**values, **change.values}
            )
        package = change.package if change is not None and change.package else spec.package
        manifest = (
            f"kind: ConfigMap\nmetadata:\n  name: {spec.name}\n  namespace: {spec.namespace}\n"
            f"data:\n  package: {package.name}-{package.version}\n  values: '{values}'\n"
        )
        return Preview(manifests={"templates/configmap.yaml": manifest})

    async def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        await self._enter("stream_logs", backend_ref)
        self._release(backend_ref)
        lines = self.logs.setdefault(backend_ref, [])
        start = max(0, len(lines) - options.tail_lines) if options.tail_lines is not None else 0
        index = start
        while index < len(lines):
            yield lines[index]
            index += 1
        if not options.follow:
            return
        for _ in range(FOLLOW_MAX_POLLS):
            if backend_ref not in self.releases:
                return
            while index < len(lines):
                yield lines[index]
                index += 1
            await asyncio.sleep(FOLLOW_POLL)


def replace_entry(entry: RevisionEntry) -> RevisionEntry:
    return entry.model_copy()


def limited(capabilities: set[Capability], name: str = "limited") -> MemoryAdapter:
    """A memory adapter declaring only ``capabilities`` (capabilities are class attributes)."""
    cls = type(
        "LimitedMemoryAdapter",
        (MemoryAdapter,),
        {"CAPABILITIES": frozenset(capabilities)},
    )
    adapter: MemoryAdapter = cls(name)
    return adapter


__all__ = ["CORRUPT_MARKER", "MemoryAdapter", "Release", "limited"]

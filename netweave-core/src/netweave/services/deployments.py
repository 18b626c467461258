"""Deployment services: every change becomes an operation stored (with the deployment row, in
one transaction) before any backend work starts; the worker runs it.

Reads reconcile with the backend, which holds the truth: ``get`` and ``status`` ask the owning
adapter and store what it reports. ``list`` answers from the store (the last reconciled state)
to stay cheap on large pages; each item's ``updatedAt`` says when that state was recorded.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from netweave.adapters import (
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
)
from netweave.adapters.times import now
from netweave.config.registry import AdapterRegistry
from netweave.errors import (
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    Unprocessable,
)
from netweave.health.status import observed, resources_ready
from netweave.logging import request_id_var
from netweave.models import (
    Deployment,
    DeploymentDiff,
    DeploymentList,
    DeploymentRequest,
    DeploymentStatus,
    DeploymentStatusReport,
    DeploymentUpdate,
    LogOptions,
    Operation,
    OperationState,
    OperationType,
    PackageState,
    Preview,
    RevisionHistory,
)
from netweave.models.paths import operation_path
from netweave.operations.cache import ReadCache
from netweave.operations.convert import (
    REQUEST_ID_PARAM,
    deployment_to_wire,
    operation_to_wire,
    package_to_info,
)
from netweave.operations.events import HookBus
from netweave.operations.observe import gone, record_observation
from netweave.store import DeploymentRecord, OperationRecord, PackageRecord, Store

_log = logging.getLogger("netweave.deployments")


class WorkerHandle(Protocol):
    """What services need of the operation worker."""

    def wake(self) -> None: ...

    def cancel_local(self, operation_id: str) -> bool: ...


def ways_out(operation_id: str) -> dict[str, str]:
    """The client tasks that leave a FAILED_TEMP operation, with their URLs."""
    return {task: operation_path(operation_id, task) for task in ("retry", "rollback", "fail")}


def blocked(deployment_id: str, active: OperationRecord) -> Conflict:
    """The 409 for a change while ``active`` holds the deployment; a FAILED_TEMP one says how
    to get out."""
    what = f"{active.operation_id} ({active.operation_type.value}, {active.state.value})"
    details: dict[str, Any] = {
        "deploymentId": deployment_id,
        "operationId": active.operation_id,
        "operationState": active.state.value,
    }
    if active.state is not OperationState.FAILED_TEMP:
        return Conflict(
            f"deployment {deployment_id} already has operation {what} in progress; "
            "wait for it to finish",
            details=details,
        )
    urls = ways_out(active.operation_id)
    details["waysOut"] = urls
    return Conflict(
        f"deployment {deployment_id} is blocked by failed operation {what}: retry it "
        f"(POST {urls['retry']}), roll it back to the state before it (POST {urls['rollback']}) "
        f"or mark it failed (POST {urls['fail']})",
        details=details,
    )


@dataclass(slots=True)
class Accepted:
    """A change accepted: the deployment as stored, its operation, and client warnings."""

    deployment: Deployment
    operation: Operation
    warnings: list[str] = field(default_factory=list)


class DeploymentService:
    def __init__(
        self,
        store: Store,
        registry: AdapterRegistry,
        hooks: HookBus,
        worker: WorkerHandle,
        package_cache: ReadCache | None = None,
    ) -> None:
        self._package_cache = package_cache
        self._store = store
        self._registry = registry
        self._hooks = hooks
        self._worker = worker

    # -- reads -------------------------------------------------------------------------------

    async def query(
        self,
        *,
        package_id: str | None = None,
        status: DeploymentStatus | None = None,
        namespace: str | None = None,
        adapter: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> DeploymentList:
        if adapter is not None and adapter not in self._registry:
            # A filter no deployment can match: an empty page, as for any other filter.
            return DeploymentList(items=[], total=0, limit=limit, offset=offset)
        page = await self._store.list_deployments(
            package_id=package_id,
            status=status,
            namespace=namespace,
            adapter=adapter,
            limit=limit,
            offset=offset,
        )
        return DeploymentList(
            items=[deployment_to_wire(r) for r in page.items],
            total=page.total,
            limit=limit,
            offset=offset,
        )

    async def record(self, deployment_id: str) -> DeploymentRecord:
        record = await self._store.get_deployment(deployment_id)
        if record is None:
            raise NotFound(
                f"deployment {deployment_id!r} not found",
                details={"deploymentId": deployment_id},
            )
        return record

    async def get(self, deployment_id: str) -> Deployment:
        record, _ = await self._reconcile(deployment_id)
        return deployment_to_wire(record)

    async def status(self, deployment_id: str) -> DeploymentStatusReport:
        record, info = await self._reconcile(deployment_id)
        wire = deployment_to_wire(record)
        return DeploymentStatusReport(
            deployment_id=record.deployment_id,
            status=record.status,
            message=record.status_message,
            revision=record.revision,
            backend_status=info.backend_status if info else None,
            resources=list(info.resources) if info else [],
            ready=resources_ready(info) if info else None,
            drift_detected=wire.drift_detected,
            drift=wire.drift,
            updated_at=(info.updated_at if info and info.updated_at else record.updated_at),
            extensions=(info.extensions if info else {}),
        )

    async def _reconcile(
        self, deployment_id: str
    ) -> tuple[DeploymentRecord, DeploymentInfo | None]:
        """Ask the owner for the deployment's real state; store it when it changed.

        Skipped while an operation runs (the status follows the operation then) and before the
        create operation reached the backend. An unreachable backend is reported as UNKNOWN for
        this answer (not stored): the gateway does not present a stale state as fact.
        """
        record = await self.record(deployment_id)
        if record.backend_ref is None:
            return record, None
        if await self._store.active_operation_for(deployment_id) is not None:
            return record, None
        adapter = self._registry.owner(record.adapter)
        if not adapter.supports(Capability.DEPLOYMENT_LIFECYCLE):
            return record, None
        try:
            info = await adapter.get_deployment(record.backend_ref)
        except NotFound:
            info = gone(record)
        except (BackendUnavailable, BackendTimeout) as exc:
            record.status = DeploymentStatus.UNKNOWN
            record.status_message = f"backend unreachable: {exc.message}"
            return record, None
        # Status, drift and their events, as the reconciler records them.
        record = await record_observation(self._store, self._hooks, record, info)
        return record, observed(info)

    async def diff(self, deployment_id: str) -> DeploymentDiff:
        """Desired (the recorded revision's manifests) vs live, per resource."""
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.DRIFT)
        ref = self._reached_backend(record)
        resources = await adapter.diff_deployment(ref, record.revision)
        return DeploymentDiff(
            deployment_id=deployment_id,
            revision=record.revision,
            drift_detected=any(r.state != "in-sync" for r in resources),
            resources=resources,
        )

    async def repair(self, deployment_id: str) -> Accepted:
        """``POST …/reconcile``: a RECONCILE operation bringing the backend back to the
        recorded package and values (the runner's outcome rule decides COMPLETED)."""
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.DEPLOYMENT_LIFECYCLE)
        await self._idle(record)
        self._reached_backend(record)
        return await self._start(record, OperationType.RECONCILE, {}, [])

    async def history(self, deployment_id: str) -> RevisionHistory:
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.HISTORY)
        if record.backend_ref is None:
            return RevisionHistory(deployment_id=deployment_id, revisions=[])
        revisions = await adapter.get_history(record.backend_ref)
        return RevisionHistory(deployment_id=deployment_id, revisions=revisions)

    async def logs(self, deployment_id: str, options: LogOptions) -> AsyncIterator[str]:
        """Checks ownership and capability now (so errors are proper responses), then streams."""
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.LOGS)
        if record.backend_ref is None:
            raise Conflict(
                f"deployment {deployment_id} has not reached the backend yet",
                details={"deploymentId": deployment_id},
            )
        return adapter.stream_logs(record.backend_ref, options)

    # -- changes -----------------------------------------------------------------------------

    async def _package(self, package_id: str, field_name: str = "packageId") -> PackageRecord:
        package = await self._store.get_package(package_id)
        if package is None:
            raise NotFound(
                f"package {package_id!r} not found",
                details={"field": field_name, "packageId": package_id},
            )
        return package

    @staticmethod
    def _deprecation_warnings(package: PackageRecord) -> list[str]:
        if package.state == PackageState.DEPRECATED:
            return [f"package {package.package_id} is DEPRECATED"]
        return []

    async def create(self, request: DeploymentRequest) -> Accepted | Preview:
        package = await self._package(request.package_id)
        if request.adapter is not None and request.adapter != package.adapter:
            # Naming an unknown adapter is a 422 (choose raises); naming another one too.
            self._registry.choose(request.adapter)
            raise Unprocessable(
                f"package {package.package_id} belongs to adapter {package.adapter!r}, "
                f"not {request.adapter!r}",
                details={"field": "adapter"},
            )
        adapter = self._registry.owner(package.adapter)
        deployment_id = str(uuid.uuid4())
        spec = DeploymentSpec(
            deployment_id=deployment_id,
            name=request.name,
            namespace=request.namespace,
            package=package_to_info(package),
            values=request.values,
            resource_pool_id=request.resource_pool_id,
        )
        # The adapter's contract pre-checks, then the plugins' policy: both before anything
        # is stored.
        await adapter.check_deployment(spec, dry_run=request.dry_run)
        self._hooks.validate_deployment(request, adapter)
        if request.dry_run:
            return await adapter.preview_deployment(spec)
        warnings = self._deprecation_warnings(package)
        for warning in warnings:
            _log.warning("deploying %s: %s", request.name, warning)
        stamp = now()
        record = DeploymentRecord(
            deployment_id=deployment_id,
            name=request.name,
            namespace=request.namespace,
            package_id=package.package_id,
            package_version=package.version,
            adapter=adapter.name,
            status=DeploymentStatus.PENDING,
            created_at=stamp,
            updated_at=stamp,
            resource_pool_id=request.resource_pool_id,
            values=request.values,
        )
        operation = self._new_operation(
            OperationType.CREATE, record, {"packageId": package.package_id}
        )
        accepted = self._accepted(record, operation, warnings)
        async with self._hooks.change(self._store, on_commit=self._created) as events:
            await self._store.add_deployment(record)
            await self._store.add_operation(operation)
            events.deployment("DeploymentCreated", accepted.deployment)
            events.operation(accepted.operation, None)
        _log_accepted(record, operation)
        return accepted

    def _created(self) -> None:
        if self._package_cache is not None:
            self._package_cache.invalidate()  # the package is IN_USE now
        self._worker.wake()

    async def update(
        self, deployment_id: str, update: DeploymentUpdate, *, replace_by_default: bool = False
    ) -> Accepted | Preview:
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.DEPLOYMENT_LIFECYCLE)
        if update.values is None and update.package_id is None and update.suspend is None:
            raise InvalidInput(
                "an update needs new values, a new packageId and/or suspend",
                details={"field": "values"},
            )
        if update.suspend is not None:
            # Checked here too so an unsupported suspend is a 501 now, not a failed operation.
            adapter.require(Capability.SUSPEND)
        values_mode = update.values_mode
        if replace_by_default and "values_mode" not in update.model_fields_set:
            values_mode = "replace"  # PUT replaces unless the client says otherwise
        package = await self._package(update.package_id or record.package_id)
        if package.adapter != record.adapter:
            raise Unprocessable(
                f"package {package.package_id} belongs to adapter {package.adapter!r}; "
                f"deployment {deployment_id} is owned by {record.adapter!r}",
                details={"field": "packageId"},
            )
        change = DeploymentChange(
            values=update.values,
            package=package_to_info(package) if update.package_id else None,
            values_mode=values_mode,
            suspend=update.suspend,
        )
        if update.dry_run:
            spec = DeploymentSpec(
                deployment_id=record.deployment_id,
                name=record.name,
                namespace=record.namespace,
                package=package_to_info(await self._package(record.package_id)),
                values=record.values,
                resource_pool_id=record.resource_pool_id,
            )
            return await adapter.preview_deployment(spec, change)
        await self._idle(record)
        # Refused now, with no operation, when the backend cannot carry it out (a 501 for a
        # backend that cannot update at all).
        await adapter.check_update(self._reached_backend(record), change)
        params: dict[str, Any] = {"valuesMode": values_mode}
        if update.values is not None:
            params["values"] = update.values
        if update.package_id is not None:
            params["packageId"] = update.package_id
        if update.suspend is not None:
            params["suspend"] = update.suspend
        warnings = self._deprecation_warnings(package) if update.package_id else []
        return await self._start(record, OperationType.UPDATE, params, warnings)

    async def delete(self, deployment_id: str) -> Accepted:
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.DEPLOYMENT_LIFECYCLE)
        result = await self._start(record, OperationType.DELETE, {}, [])
        return result

    async def scale(self, deployment_id: str, replicas: int) -> Accepted:
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.SCALING)
        await self._idle(record)
        # Refused now, with no operation, when the backend cannot carry it out.
        await adapter.check_scale(self._reached_backend(record), replicas)
        return await self._start(record, OperationType.SCALE, {"replicas": replicas}, [])

    async def rollback(self, deployment_id: str, revision: int) -> Accepted:
        record = await self.record(deployment_id)
        adapter = self._registry.owner(record.adapter)
        adapter.require(Capability.ROLLBACK)
        await self._idle(record)
        ref = self._reached_backend(record)
        if adapter.supports(Capability.HISTORY):
            history = await adapter.get_history(ref)
            self._check_revision(record, revision, {entry.revision for entry in history})
        return await self._start(record, OperationType.ROLLBACK, {"revision": revision}, [])

    async def _idle(self, record: DeploymentRecord) -> None:
        """409 now, before reading the backend, when an operation holds the deployment."""
        active = await self._store.active_operation_for(record.deployment_id)
        if active is not None:
            raise blocked(record.deployment_id, active)

    @staticmethod
    def _reached_backend(record: DeploymentRecord) -> str:
        if record.backend_ref is None:
            raise Conflict(
                f"deployment {record.deployment_id} has not reached the backend; "
                "retry its create operation or delete it",
                details={"deploymentId": record.deployment_id},
            )
        return record.backend_ref

    @staticmethod
    def _check_revision(record: DeploymentRecord, revision: int, known: set[int]) -> None:
        """A rollback target must be in the backend's history (0: a revision before the
        current one must exist)."""
        if revision < 0:
            raise InvalidInput("revision must be >= 0", details={"field": "revision"})
        if revision and revision not in known:
            raise InvalidInput(
                f"deployment {record.deployment_id} has no revision {revision}; "
                f"its history holds {sorted(known) or 'none'}",
                details={"field": "revision", "revisions": sorted(known)},
            )
        current = max(known, default=record.revision)
        if not revision and not any(r < current for r in known):
            raise InvalidInput(
                f"deployment {record.deployment_id} has no previous revision to roll back to",
                details={"field": "revision", "revisions": sorted(known)},
            )

    async def _start(
        self,
        record: DeploymentRecord,
        operation_type: OperationType,
        params: dict[str, Any],
        warnings: list[str],
    ) -> Accepted:
        if operation_type is not OperationType.DELETE:
            # What the rollback way out restores if this operation fails.
            params = {
                **params,
                "before": {
                    "revision": record.revision,
                    "packageId": record.package_id,
                    "packageVersion": record.package_version,
                    "values": record.values,
                },
            }
        operation = self._new_operation(operation_type, record, params)
        accepted = self._accepted(record, operation, warnings)
        async with self._hooks.change(self._store, on_commit=self._worker.wake) as events:
            active = await self._store.active_operation_for(record.deployment_id)
            if active is not None:
                raise blocked(record.deployment_id, active)
            await self._store.add_operation(operation)
            events.operation(accepted.operation, None)
        _log_accepted(record, operation)
        return accepted

    @staticmethod
    def _new_operation(
        operation_type: OperationType, record: DeploymentRecord, params: dict[str, Any]
    ) -> OperationRecord:
        stamp = now()
        request_id = request_id_var.get()
        if request_id is not None:
            params = {**params, REQUEST_ID_PARAM: request_id}
        return OperationRecord(
            operation_id=str(uuid.uuid4()),
            operation_type=operation_type,
            deployment_id=record.deployment_id,
            adapter=record.adapter,
            state=OperationState.STARTING,
            start_time=stamp,
            state_entered_time=stamp,
            params=params,
        )

    @staticmethod
    def _accepted(
        record: DeploymentRecord, operation: OperationRecord, warnings: list[str]
    ) -> Accepted:
        return Accepted(
            deployment=deployment_to_wire(record),
            operation=operation_to_wire(operation),
            warnings=warnings,
        )


def _log_accepted(record: DeploymentRecord, operation: OperationRecord) -> None:
    # The service's line of a request that starts an operation: its ids as keys, beside the
    # request id bound by the API, so the worker's and the adapter's lines join it.
    _log.info(
        "operation %s (%s) accepted for deployment %s",
        operation.operation_id,
        operation.operation_type.value,
        record.deployment_id,
        extra={
            "operationId": operation.operation_id,
            "operationType": operation.operation_type.value,
            "deploymentId": record.deployment_id,
            "adapter": record.adapter,
            "packageId": record.package_id,
        },
    )


__all__ = [
    "Accepted",
    "DeploymentService",
    "WorkerHandle",
    "blocked",
    "ways_out",
]

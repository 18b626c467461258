"""Runs one claimed operation against its owning adapter, moving it through the ETSI states.

STARTING → PROCESSING (deployment DEPLOYING / DELETING / ROLLING_BACK) → the adapter call →
COMPLETED (deployment takes what the adapter reports; a DELETE removes the record) or
FAILED_TEMP (deployment FAILED with the backend's message; the client retries or fails it).

Every state write is a compare-and-set on the state the runner expects, so a cancel (or another
replica) that changed the operation meanwhile wins and the runner stops quietly.
Backend-unavailable and timeout errors are retried in-process (bounded, with back-off) before the
operation is parked in FAILED_TEMP. Each adapter call carries an ``OperationContext`` whose
``idempotency_key`` is the same on every attempt and after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from netweave.adapters import (
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
)
from netweave.errors import (
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import DeploymentStatus, OperationState, OperationType
from netweave.operations.cache import ReadCache
from netweave.operations.convert import (
    deployment_to_wire,
    error_to_problem,
    package_to_info,
)
from netweave.operations.deployments import deep_merge, now
from netweave.operations.events import EventBatch, HookBus
from netweave.operations.metrics import Metrics
from netweave.registry import AdapterRegistry
from netweave.store import DeploymentRecord, OperationRecord, PackageRecord, Store

_log = logging.getLogger("netweave.operations")

_RUNNING_STATUS = {
    OperationType.CREATE: DeploymentStatus.DEPLOYING,
    OperationType.UPDATE: DeploymentStatus.DEPLOYING,
    OperationType.SCALE: DeploymentStatus.DEPLOYING,
    OperationType.ROLLBACK: DeploymentStatus.ROLLING_BACK,
    OperationType.DELETE: DeploymentStatus.DELETING,
}
_RETRYABLE = (BackendUnavailable, BackendTimeout)


def idempotency_key(operation: OperationRecord) -> str:
    """Stable per operation step: one step per operation today (``<id>:<type>``)."""
    return f"{operation.operation_id}:{operation.operation_type.value.lower()}"


class OperationRunner:
    def __init__(
        self,
        store: Store,
        registry: AdapterRegistry,
        hooks: HookBus,
        metrics: Metrics,
        *,
        max_attempts: int = 3,
        backoff: float = 0.2,
        package_cache: ReadCache | None = None,
    ) -> None:
        self._package_cache = package_cache
        self._store = store
        self._registry = registry
        self._hooks = hooks
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._backoff = backoff

    async def run(self, claimed: OperationRecord) -> bool:
        """Run one step; True when this run settled the operation (COMPLETED).

        A settled operation's lease went with its final write, so the worker skips releasing it.
        """
        started = time.monotonic()
        settled = False
        package: PackageRecord | None = None
        try:
            # The operation enters PROCESSING and its deployment DEPLOYING (…) together, so no
            # reader sees one without the other; their events commit with them. What the
            # step needs from the store is read in the same transaction.
            async with self._hooks.change(self._store) as events:
                deployment = await self._store.get_deployment(claimed.deployment_id)
                before = deployment.status if deployment is not None else None
                operation = await self._enter_processing(
                    claimed, first_attempt=deployment is not None
                )
                if deployment is not None:
                    deployment = await self._set_running(deployment, operation)
                    package = await self._package_of(operation, deployment)
                changed = deployment is not None and deployment.status != before
                self._announce_start(events, claimed, operation, deployment if changed else None)
        except Conflict:
            return False  # cancelled or taken over between claim and start
        if deployment is None:
            if operation.operation_type is OperationType.DELETE:
                return await self._finish(operation, None, None)
            await self._fail(
                operation,
                None,
                NotFound(f"deployment {operation.deployment_id} no longer exists"),
            )
            return False
        try:
            adapter = self._registry.owner(operation.adapter)
        except NetweaveError as exc:
            await self._fail(operation, deployment, exc)
            return False
        for attempt in range(self._max_attempts):
            try:
                if attempt:  # the first attempt was counted by the start's write
                    operation = await self._store.update_operation(
                        operation.operation_id,
                        expected_state=OperationState.PROCESSING,
                        attempts=operation.attempts + 1,
                    )
            except Conflict:
                return False
            ctx = OperationContext(
                operation_id=operation.operation_id,
                idempotency_key=idempotency_key(operation),
                attempt=operation.attempts,
            )
            try:
                info = await self._call(adapter, operation, deployment, package, ctx)
            except _RETRYABLE as exc:
                if attempt + 1 >= self._max_attempts:
                    await self._fail(operation, deployment, exc)
                    break
                _log.info(
                    "operation %s attempt %d: %s; retrying",
                    operation.operation_id,
                    operation.attempts,
                    exc.message,
                )
                await asyncio.sleep(min(self._backoff * 2**attempt, 10.0))
                continue
            except NetweaveError as exc:
                await self._fail(operation, deployment, exc)
                break
            except Exception as exc:
                _log.exception("operation %s: unexpected error", operation.operation_id)
                await self._fail(operation, deployment, exc)
                break
            settled = await self._finish(operation, deployment, info)
            break
        self._metrics.child(
            self._metrics.operation_duration, operation.adapter, operation.operation_type.value
        ).observe(time.monotonic() - started)
        return settled

    # -- steps -------------------------------------------------------------------------------

    async def _enter_processing(
        self, operation: OperationRecord, *, first_attempt: bool
    ) -> OperationRecord:
        """PROCESSING; with ``first_attempt``, the coming adapter call counted in the same write."""
        attempts = {"attempts": operation.attempts + 1} if first_attempt else {}
        if operation.state is OperationState.PROCESSING:
            # Resumed (restart, lease expiry) or retried: same step again.
            if not attempts:
                return operation
            return await self._store.update_operation(
                operation.operation_id, expected_state=OperationState.PROCESSING, **attempts
            )
        return await self._store.update_operation(
            operation.operation_id,
            expected_state=OperationState.STARTING,
            state=OperationState.PROCESSING,
            **attempts,
        )

    async def _set_running(
        self, deployment: DeploymentRecord, operation: OperationRecord
    ) -> DeploymentRecord:
        status = _RUNNING_STATUS[operation.operation_type]
        if deployment.status == status and deployment.status_message is None:
            return deployment
        return await self._store.update_deployment(
            deployment.deployment_id, status=status, status_message=None, updated_at=now()
        )

    @staticmethod
    def _announce_start(
        events: EventBatch,
        claimed: OperationRecord,
        operation: OperationRecord,
        deployment: DeploymentRecord | None,
    ) -> None:
        """The start's events (``deployment``: only when its status changed)."""
        if claimed.state is not operation.state:
            events.operation(operation, claimed.state.value)
        if deployment is not None:
            events.deployment("DeploymentChanged", deployment)

    async def _package_of(
        self, operation: OperationRecord, deployment: DeploymentRecord
    ) -> PackageRecord | None:
        """The package the step installs: the deployment's for a create, the new one for an
        update that changes it; None otherwise (or when it is gone: ``_call`` says so)."""
        if operation.operation_type is OperationType.CREATE:
            return await self._store.get_package(deployment.package_id)
        if operation.operation_type is OperationType.UPDATE and operation.params.get("packageId"):
            return await self._store.get_package(str(operation.params["packageId"]))
        return None

    async def _call(
        self,
        adapter: DMSAdapter,
        operation: OperationRecord,
        deployment: DeploymentRecord,
        package: PackageRecord | None,
        ctx: OperationContext,
    ) -> DeploymentInfo | None:
        kind = operation.operation_type
        params = operation.params
        if kind is OperationType.CREATE:
            if package is None:
                raise NotFound(
                    f"package {deployment.package_id} no longer exists",
                    details={"packageId": deployment.package_id},
                )
            spec = DeploymentSpec(
                deployment_id=deployment.deployment_id,
                name=deployment.name,
                namespace=deployment.namespace,
                package=package_to_info(package),
                values=deployment.values,
                resource_pool_id=deployment.resource_pool_id,
            )
            return await adapter.create_deployment(spec, ctx)
        ref = deployment.backend_ref
        if kind is OperationType.DELETE:
            if ref is not None:
                try:
                    await adapter.delete_deployment(ref, ctx)
                except NotFound:
                    _log.info("deployment %s already gone from the backend", ref)
            return None
        if ref is None:
            raise InvalidInput(
                f"deployment {deployment.deployment_id} never reached the backend; "
                "retry its create operation or delete it"
            )
        if kind is OperationType.UPDATE:
            new_package = None
            if params.get("packageId"):
                if package is None:
                    raise NotFound(f"package {params['packageId']} no longer exists")
                new_package = package_to_info(package)
            change = DeploymentChange(
                values=params.get("values"),
                package=new_package,
                values_mode="replace" if params.get("valuesMode") == "replace" else "merge",
                suspend=params.get("suspend"),
            )
            return await adapter.update_deployment(ref, change, ctx)
        if kind is OperationType.SCALE:
            return await adapter.scale_deployment(ref, int(params["replicas"]), ctx)
        if kind is OperationType.ROLLBACK:
            return await adapter.rollback_deployment(ref, int(params.get("revision", 0)), ctx)
        raise InvalidInput(f"unknown operation type {kind}")

    async def _finish(
        self,
        operation: OperationRecord,
        deployment: DeploymentRecord | None,
        info: DeploymentInfo | None,
    ) -> bool:
        previous = operation.state.value
        if self._package_cache is not None:
            # A deployment removed or moved to another package changes packages' IN_USE.
            self._package_cache.invalidate()
        if operation.operation_type is OperationType.DELETE or deployment is None:
            try:
                async with self._hooks.change(self._store) as events:
                    if deployment is not None:
                        await self._store.delete_deployment(deployment.deployment_id)
                    done = await self._store.update_operation(
                        operation.operation_id,
                        expected_state=OperationState.PROCESSING,
                        state=OperationState.COMPLETED,
                        error=None,
                    )
                    if deployment is not None:
                        gone = deployment_to_wire(deployment)
                        gone.status = DeploymentStatus.DELETED
                        events.deployment("DeploymentDeleted", gone)
                    events.operation(done, previous)
            except Conflict:
                return False
            self._count(done)
            return True
        assert info is not None
        changes = self._deployment_changes(operation, deployment, info)
        try:
            async with self._hooks.change(self._store) as events:
                updated = await self._store.update_deployment(deployment.deployment_id, **changes)
                done = await self._store.update_operation(
                    operation.operation_id,
                    expected_state=OperationState.PROCESSING,
                    state=OperationState.COMPLETED,
                    error=None,
                )
                events.deployment("DeploymentChanged", updated)
                events.operation(done, previous)
        except Conflict:
            # Cancelled while the backend did the work: record the backend's truth anyway.
            async with self._hooks.change(self._store) as events:
                updated = await self._store.update_deployment(deployment.deployment_id, **changes)
                events.deployment("DeploymentChanged", updated)
            return False
        self._count(done)
        return True

    def _deployment_changes(
        self, operation: OperationRecord, deployment: DeploymentRecord, info: DeploymentInfo
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "status": info.status,
            "status_message": info.message,
            "revision": info.revision,
            "backend_ref": info.backend_ref,
            "updated_at": now(),
        }
        params = operation.params
        if operation.operation_type is OperationType.UPDATE:
            if params.get("packageId"):
                changes["package_id"] = params["packageId"]
            if params.get("values") is not None:
                changes["values"] = (
                    dict(params["values"])
                    if params.get("valuesMode") == "replace"
                    else deep_merge(deployment.values, params["values"])
                )
        if info.values is not None:
            changes["values"] = info.values
        if info.package_version is not None:
            changes["package_version"] = info.package_version
        elif operation.operation_type is OperationType.UPDATE and params.get("packageId"):
            # The package's own version when the adapter does not report one.
            changes.pop("package_version", None)
        return changes

    async def _fail(
        self,
        operation: OperationRecord,
        deployment: DeploymentRecord | None,
        exc: BaseException,
    ) -> None:
        problem = error_to_problem(exc, instance=f"/o2dms/v1/operations/{operation.operation_id}")
        message = problem.detail or problem.title
        previous = operation.state.value
        try:
            async with self._hooks.change(self._store) as events:
                failed = await self._store.update_operation(
                    operation.operation_id,
                    expected_state=OperationState.PROCESSING,
                    state=OperationState.FAILED_TEMP,
                    error=problem.model_dump(exclude_none=True),
                )
                if deployment is not None:
                    updated = await self._store.update_deployment(
                        deployment.deployment_id,
                        status=DeploymentStatus.FAILED,
                        status_message=message,
                        updated_at=now(),
                    )
                    events.deployment("DeploymentChanged", updated)
                events.operation(failed, previous)
        except Conflict:
            return
        _log.warning(
            "operation %s (%s) failed: %s",
            operation.operation_id,
            operation.operation_type.value,
            message,
        )
        self._count(failed)

    def _count(self, operation: OperationRecord) -> None:
        self._metrics.child(
            self._metrics.operations,
            operation.adapter,
            operation.operation_type.value,
            operation.state.value,
        ).inc()

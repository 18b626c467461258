"""Runs one claimed operation against its owning adapter, moving it through the ETSI states.

STARTING → PROCESSING (deployment DEPLOYING / DELETING / ROLLING_BACK) → the adapter call →
the outcome rule → COMPLETED or FAILED_TEMP.

The outcome rule lives here, not in adapters: an adapter reports what the backend holds, and the
runner decides. While the backend reports the deployment PENDING / DEPLOYING / ROLLING_BACK /
UNKNOWN the runner polls it (within the adapter's write timeout); the operation is COMPLETED only
when the backend confirms the requested end state (DEPLOYED — SUSPENDED for a suspend — with the
requested package version and values; gone for a DELETE). Anything else is FAILED_TEMP with a
problem body carrying the backend's own message, and the deployment records what the backend
says (a failed request does not turn a healthy release into FAILED).

A FAILED_TEMP operation is left by ``retry`` (the same step again), ``fail`` (final) or
``rollback``: ROLLING_BACK → ROLLED_BACK, restoring what the deployment was before the operation
(uninstalled after a failed create; the prior revision, package and values after a failed
change), or FAILED_TEMP again if the rollback itself fails.

Every state write is a compare-and-set on the state the runner expects, so a cancel (or another
replica) that changed the operation meanwhile wins and the runner stops quietly.
Backend-unavailable and timeout errors are retried in-process (bounded, with back-off) before the
operation is parked in FAILED_TEMP. Each adapter call carries an ``OperationContext`` whose
``idempotency_key`` is the same on every attempt and after a restart, so a resumed operation
reconciles with what the backend already holds instead of doing the work twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import structlog

from netweave.adapters import (
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    KnownState,
    OperationContext,
)
from netweave.adapters.reads import reads_marked
from netweave.adapters.times import now
from netweave.adapters.values import merge_values, values_contain
from netweave.config.registry import AdapterRegistry
from netweave.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.health.status import drift_changes, observed, unready_message, waiting_for_readiness
from netweave.logging import request_id_var
from netweave.models import DeploymentStatus, OperationState, OperationType
from netweave.models.paths import operation_path
from netweave.operations.cache import ReadCache
from netweave.operations.convert import (
    REQUEST_ID_PARAM,
    deployment_to_wire,
    error_to_problem,
    package_to_info,
)
from netweave.operations.events import EventBatch, HookBus
from netweave.operations.metrics import Metrics
from netweave.operations.wakeups import wakeups_of
from netweave.store import DeploymentRecord, OperationRecord, PackageRecord, Store
from netweave.waiting import wait_event

_log = logging.getLogger("netweave.operations")

_RUNNING_STATUS = {
    OperationType.CREATE: DeploymentStatus.DEPLOYING,
    OperationType.UPDATE: DeploymentStatus.DEPLOYING,
    OperationType.SCALE: DeploymentStatus.DEPLOYING,
    OperationType.ROLLBACK: DeploymentStatus.ROLLING_BACK,
    OperationType.DELETE: DeploymentStatus.DELETING,
    OperationType.RECONCILE: DeploymentStatus.DEPLOYING,
}
_RETRYABLE = (BackendUnavailable, BackendTimeout)
#: Statuses that are not an outcome yet: the runner keeps polling the backend.
_SETTLING = frozenset(
    {
        DeploymentStatus.PENDING,
        DeploymentStatus.DEPLOYING,
        DeploymentStatus.ROLLING_BACK,
        DeploymentStatus.UNKNOWN,
    }
)
_SETTLED_OK = frozenset({DeploymentStatus.DEPLOYED, DeploymentStatus.SUSPENDED})
_FIRST_POLL = 0.05
_MAX_POLL = 2.0
#: A watch report of a settling deployment reads it at once, but not sooner than this after
#: the previous read ended: a burst of reports costs one read, not one each.
_REPORT_GAP = 0.05
#: Up to this many settles of one adapter keep ``_REPORT_GAP``; more space their reads in
#: proportion, up to ``_MAX_REPORT_GAP``: a rollout's status is reported several times, and
#: with many settling (P4: 200 creates, ~30 at once) a read per report took the gateway CPU
#: the creates wait for, while a lone create still reads its readiness 50 ms after a report.
#: Measured (bench_creates gateway 200, alternated): 4 cut settle reads 27-48 % and the
#: gateway's CPU where the code before read 490-630 times (no change where it read ~300); 1
#: (0.5 s from 10 settling) cut as many but measured a slower wall time.
_FEW_SETTLES = 4
_MAX_REPORT_GAP = 0.5


def _report_gap(settling: int) -> float:
    """The gap before a report's read while ``settling`` operations of its adapter settle."""
    return min(_REPORT_GAP * max(1.0, settling / _FEW_SETTLES), _MAX_REPORT_GAP)


def idempotency_key(operation: OperationRecord) -> str:
    """Stable per operation step: one step per operation today (``<id>:<type>``)."""
    return f"{operation.operation_id}:{operation.operation_type.value.lower()}"


def rollback_key(operation: OperationRecord) -> str:
    """The rollback step's key: distinct from the step it undoes."""
    return f"{operation.operation_id}:rollback"


def _wanted(operation: OperationRecord) -> frozenset[DeploymentStatus]:
    """The statuses that mean the backend did what ``operation`` asked."""
    suspend = operation.params.get("suspend")
    if suspend is True:
        return frozenset({DeploymentStatus.SUSPENDED})
    if suspend is False:
        return frozenset({DeploymentStatus.DEPLOYED})
    return _SETTLED_OK


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
        #: Watch reports (told by the reconciler) wake the settle polls.
        self._wakeups = wakeups_of(hooks)
        #: Called with an operation's id once the write ending it for good (COMPLETED,
        #: ROLLED_BACK) committed: the worker wakes its followers then, not after the run's
        #: own bookkeeping (the step's log line, the lease renewer's end). Not FAILED_TEMP: a
        #: follower told of it may retry at once, and the run must have left the worker first.
        self.on_settled: Callable[[str], object] | None = None

    async def run(self, claimed: OperationRecord) -> bool:
        """Run one step; True when this run settled the operation (COMPLETED).

        A settled operation's lease went with its final write, so the worker skips releasing it.
        Every line logged meanwhile (the runner's, the adapter's, its backend client's) carries
        the operation's ids as keys, so one operation's lines can be found together.
        """
        # The request that created it (stored with it): its id is on the HTTP line too.
        request_id = claimed.params.get(REQUEST_ID_PARAM)
        token = request_id_var.set(request_id if isinstance(request_id, str) else None)
        try:
            with structlog.contextvars.bound_contextvars(
                operationId=claimed.operation_id,
                operationType=claimed.operation_type.value,
                deploymentId=claimed.deployment_id,
                adapter=claimed.adapter,
            ):
                return await self._run_step(claimed)
        finally:
            request_id_var.reset(token)

    async def _run_step(self, claimed: OperationRecord) -> bool:
        started = time.monotonic()
        if claimed.state is OperationState.ROLLING_BACK:
            settled = await self._roll_back(claimed)
            self._observe(claimed, started)
            return settled
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
                # The package the step deploys is a key of the adapter's lines too.
                package_id = package.package_id if package is not None else deployment.package_id
                # Whatever the call reports, it read after this (the reconciler's cue), or
                # after the last read the adapter marked.
                called = time.monotonic()
                with (
                    structlog.contextvars.bound_contextvars(packageId=package_id),
                    reads_marked() as reads,
                ):
                    info = await self._call(adapter, operation, deployment, package, ctx)
                if reads:
                    called = reads[-1]
            except _RETRYABLE as exc:
                if attempt + 1 >= self._max_attempts:
                    await self._fail(operation, deployment, exc, adapter=adapter)
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
                await self._fail(operation, deployment, exc, adapter=adapter)
                break
            except Exception as exc:
                _log.exception("operation %s: unexpected error", operation.operation_id)
                await self._fail(operation, deployment, exc, adapter=adapter)
                break
            settled = await self._conclude(adapter, operation, deployment, package, info, called)
            break
        self._observe(operation, started)
        return settled

    def _observe(self, operation: OperationRecord, started: float) -> None:
        elapsed = time.monotonic() - started
        self._metrics.child(
            self._metrics.operation_duration, operation.adapter, operation.operation_type.value
        ).observe(elapsed)
        _log.info(
            "operation %s: %s step ran in %d ms",
            operation.operation_id,
            operation.operation_type.value,
            elapsed * 1000,
            extra={"durationMs": round(elapsed * 1000)},
        )

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
        if operation.operation_type in (OperationType.CREATE, OperationType.RECONCILE):
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
        if kind in (OperationType.UPDATE, OperationType.SCALE):
            # What the store records the deployment holds, so the adapter need not read it
            # back from the backend (it checks the backend's revision still matches).
            ctx = dataclasses.replace(ctx, known=await self._known(deployment))
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
        if kind is OperationType.RECONCILE:
            return await self._repair(adapter, deployment, package, ref, ctx)
        raise InvalidInput(f"unknown operation type {kind}")

    @staticmethod
    async def _repair(
        adapter: DMSAdapter,
        deployment: DeploymentRecord,
        package: PackageRecord | None,
        ref: str,
        ctx: OperationContext,
    ) -> DeploymentInfo:
        """The recorded package and values applied again; installed again when the backend no
        longer has the deployment at all (uninstalled behind the gateway's back)."""
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
        try:
            current = await adapter.get_deployment(ref)
        except NotFound:
            current = None
        if current is None or current.status is DeploymentStatus.DELETED:
            return await adapter.create_deployment(spec, ctx)
        return await adapter.repair_deployment(ref, spec, ctx)

    # -- the outcome rule ---------------------------------------------------------------------

    async def _conclude(
        self,
        adapter: DMSAdapter,
        operation: OperationRecord,
        deployment: DeploymentRecord,
        package: PackageRecord | None,
        info: DeploymentInfo | None,
        read_at: float,
    ) -> bool:
        """Settle what the adapter started, then COMPLETED only if the backend confirms it.
        ``read_at``: when the read that ``info`` reports began (at the latest)."""
        deadline = time.monotonic() + adapter.config.timeouts.write
        try:
            if info is None:  # DELETE: done when the backend no longer has it
                if deployment.backend_ref is not None:
                    await self._await_gone(adapter, deployment.backend_ref, deadline)
                return await self._finish(operation, deployment, None)
            info, read_at = await self._settle(adapter, info, deadline, read_at)
        except NetweaveError as exc:
            await self._fail(operation, deployment, exc, adapter=adapter)
            return False
        if waiting_for_readiness(info):
            # Deployed, but not ready within the write timeout: not the requested end state.
            await self._fail(
                operation,
                deployment,
                BackendTimeout(
                    f"the backend deployed it, but it is still {unready_message(info)} after "
                    "the adapter's write timeout",
                    details={"deploymentStatus": DeploymentStatus.DEGRADED.value},
                ),
                reported=observed(info),
            )
            return False
        unmet = self._unmet(operation, deployment, package, info)
        if unmet is not None:
            await self._fail(operation, deployment, unmet, reported=info)
            return False
        return await self._finish(operation, deployment, info, read_at=read_at)

    async def _settle(
        self, adapter: DMSAdapter, info: DeploymentInfo, deadline: float, read_at: float
    ) -> tuple[DeploymentInfo, float]:
        """Poll the backend while the deployment is on its way; its last report (still
        settling only when ``deadline`` passed) and when that read began (``read_at``: the
        given report's)."""
        delay = _FIRST_POLL
        ended = time.monotonic()
        ref = info.backend_ref
        # A watch report of it (a resource became ready, …) reads it at once; the timer is the
        # fallback: adapters that do not watch, a lost event, another replica's watch.
        name = adapter.name
        with self._wakeups.waiting(name, ref, read_at) as reported:
            # Deployed but not ready yet (DEPLOYED only when ready): still on its way too.
            while (
                info.status in _SETTLING or waiting_for_readiness(info)
            ) and time.monotonic() < deadline:
                if await wait_event(reported, delay):
                    gap = ended + _report_gap(self._wakeups.settling(name)) - time.monotonic()
                    if gap > 0:
                        await asyncio.sleep(gap)  # reports arriving meanwhile join this read
                # The timer backs off as before, reports or not: once woken, its polls were
                # ~10 % of the settle reads in the P4 bench, and jumping it to _MAX_POLL
                # measured the same within noise, while a readiness the watch does not report
                # (a kind it does not watch) would wait longer.
                delay = min(delay * 2, _MAX_POLL)
                # Cleared before the read: a report arriving during it may postdate it.
                reported.clear()
                started = time.monotonic()
                try:
                    with reads_marked() as reads:
                        info = await adapter.get_deployment(ref)
                except _RETRYABLE as exc:
                    # A blip while polling is not an outcome; the deadline still bounds it.
                    _log.info("polling %s: %s", ref, exc.message)
                else:
                    read_at = reads[-1] if reads else started
                ended = time.monotonic()
        return info, read_at

    async def _await_gone(self, adapter: DMSAdapter, backend_ref: str, deadline: float) -> None:
        delay = _FIRST_POLL
        while True:
            try:
                info = await adapter.get_deployment(backend_ref)
            except NotFound:
                return
            except _RETRYABLE as exc:
                _log.info("polling %s: %s", backend_ref, exc.message)
            else:
                if info.status is DeploymentStatus.DELETED:
                    return
            if time.monotonic() >= deadline:
                raise BackendTimeout(
                    f"the backend still holds {backend_ref} "
                    f"{adapter.config.timeouts.write:g} s after the delete",
                    details={"backendRef": backend_ref},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_POLL)

    @staticmethod
    def _unmet(
        operation: OperationRecord,
        deployment: DeploymentRecord,
        package: PackageRecord | None,
        info: DeploymentInfo,
    ) -> NetweaveError | None:
        """Why the backend's settled report is not what ``operation`` asked (None: it is)."""
        kind = operation.operation_type
        wanted = _wanted(operation)
        details: dict[str, Any] = {"deploymentStatus": info.status.value}
        if info.backend_status:
            details["backendStatus"] = info.backend_status
        if info.status in _SETTLING:
            return BackendTimeout(
                f"the backend still reports the deployment {info.status.value} after the "
                "adapter's write timeout" + (f": {info.message}" if info.message else ""),
                details=details,
            )
        if info.status not in wanted:
            return BackendError(
                info.message
                or f"the backend reports the deployment {info.status.value}, not "
                f"{' or '.join(sorted(s.value for s in wanted))}",
                details=details,
            )
        if (
            package is not None
            and info.package_version is not None
            and info.package_version != package.version
        ):
            return BackendError(
                f"the backend runs package version {info.package_version}, "
                f"not the requested {package.version}",
                details=details,
            )
        if kind is OperationType.RECONCILE and info.drift:
            return BackendError(
                "after the repair the backend still differs from the recorded state: "
                + "; ".join(
                    f"{d.kind} {d.name}: {d.change}" if d.kind else d.change for d in info.drift
                ),
                details=details,
            )
        requested: dict[str, Any] | None = None
        if kind in (OperationType.CREATE, OperationType.RECONCILE):
            requested = deployment.values
        elif kind is OperationType.UPDATE:
            requested = operation.params.get("values")
        if requested and info.values is not None and not values_contain(info.values, requested):
            return BackendError(
                "the backend does not hold the requested values after the change",
                details=details,
            )
        return None

    async def _finish(
        self,
        operation: OperationRecord,
        deployment: DeploymentRecord | None,
        info: DeploymentInfo | None,
        *,
        state: OperationState = OperationState.COMPLETED,
        expected: OperationState = OperationState.PROCESSING,
        changes: dict[str, Any] | None = None,
        read_at: float | None = None,
    ) -> bool:
        """The operation reaches ``state``; without ``info`` the deployment is gone (a delete,
        or the rollback of a create), else it takes ``changes`` (default: what the step did).
        ``read_at``: when the read ``info`` reports began, told to the hooks' listeners once
        the record holds all of it (the default ``changes``: status, revision, values, drift)."""
        previous = operation.state.value
        if self._package_cache is not None:
            # A deployment removed or moved to another package changes packages' IN_USE.
            self._package_cache.invalidate()
        settled = self._settled(operation.operation_id)
        if info is None or deployment is None:
            try:
                async with self._hooks.change(self._store, on_commit=settled) as events:
                    if deployment is not None:
                        await self._store.delete_deployment(deployment.deployment_id)
                    done = await self._store.update_operation(
                        operation.operation_id, expected_state=expected, state=state, error=None
                    )
                    if deployment is not None:
                        gone = deployment_to_wire(deployment)
                        gone.status = DeploymentStatus.DELETED
                        events.deployment("DeploymentDeleted", gone)
                    # The deployment is gone: the backend holds none of its resources.
                    events.operation(done, previous, resources=())
            except Conflict:
                return False
            self._count(done)
            return True
        if changes is None:
            changes = self._deployment_changes(operation, deployment, info)
        else:
            read_at = None  # partial changes: the record may not hold all the read said
        try:
            async with self._hooks.change(self._store, on_commit=settled) as events:
                updated = await self._store.update_deployment(deployment.deployment_id, **changes)
                done = await self._store.update_operation(
                    operation.operation_id, expected_state=expected, state=state, error=None
                )
                events.deployment("DeploymentChanged", updated)
                events.operation(done, previous, resources=info.resources)
        except Conflict:
            # Cancelled while the backend did the work: record the backend's truth anyway.
            async with self._hooks.change(self._store) as events:
                updated = await self._store.update_deployment(deployment.deployment_id, **changes)
                events.deployment("DeploymentChanged", updated)
            self._recorded(operation, info, read_at)
            return False
        self._recorded(operation, info, read_at)
        self._count(done)
        return True

    def _recorded(
        self, operation: OperationRecord, info: DeploymentInfo, read_at: float | None
    ) -> None:
        """Tell the hooks' listeners (the reconciler) what the store now holds of the backend:
        its watch reports the operation's own changes, which a read again would only repeat."""
        if read_at is not None and info.backend_ref:
            self._hooks.recorded_read(operation.adapter, info.backend_ref, read_at)

    def _settled(self, operation_id: str) -> Callable[[], object] | None:
        """The commit callback announcing ``operation_id`` settled (see ``on_settled``)."""
        listener = self.on_settled
        if listener is None:
            return None
        return lambda: listener(operation_id)

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
                    else merge_values(deployment.values, params["values"])
                )
        if info.values is not None:
            changes["values"] = info.values
        if info.package_version is not None:
            changes["package_version"] = info.package_version
        elif operation.operation_type is OperationType.UPDATE and params.get("packageId"):
            # The package's own version when the adapter does not report one.
            changes.pop("package_version", None)
        # What the backend holds now is what the gateway asked for: no drift left, or what the
        # adapter still sees differ.
        changes.update(drift_changes(deployment.drift, info.drift or (), now()))
        return changes

    async def _fail(
        self,
        operation: OperationRecord,
        deployment: DeploymentRecord | None,
        exc: BaseException,
        *,
        adapter: DMSAdapter | None = None,
        reported: DeploymentInfo | None = None,
        expected: OperationState = OperationState.PROCESSING,
    ) -> None:
        """FAILED_TEMP with the problem; the deployment takes what the backend says.

        ``reported``: the backend's settled report, when there is one; otherwise the runner
        asks ``adapter`` once (a failed change may have left the release as it was).
        """
        problem = error_to_problem(exc, instance=operation_path(operation.operation_id))
        message = problem.detail or problem.title
        if deployment is not None and reported is None and adapter is not None:
            reported = await self._backend_view(adapter, deployment)
        previous = operation.state.value
        try:
            async with self._hooks.change(self._store) as events:
                failed = await self._store.update_operation(
                    operation.operation_id,
                    expected_state=expected,
                    state=OperationState.FAILED_TEMP,
                    error=problem.model_dump(exclude_none=True),
                )
                if deployment is not None:
                    changes: dict[str, Any] = {
                        "status": DeploymentStatus.FAILED,
                        "status_message": message,
                        "updated_at": now(),
                    }
                    if reported is not None:
                        reported = observed(reported)
                        changes["status"] = reported.status
                        changes["revision"] = reported.revision
                        changes["backend_ref"] = reported.backend_ref
                        if reported.status is not DeploymentStatus.FAILED:
                            # Say why, beside a status that is not itself a failure.
                            changes["status_message"] = (
                                f"{operation.operation_type.value} operation "
                                f"{operation.operation_id} failed: {message}"
                            )
                    updated = await self._store.update_deployment(
                        deployment.deployment_id, **changes
                    )
                    events.deployment("DeploymentChanged", updated)
                # What the backend holds after the failure, when it could say.
                held = (
                    reported.resources
                    if reported is not None and reported.status is not DeploymentStatus.UNKNOWN
                    else None
                )
                events.operation(failed, previous, resources=held)
        except (Conflict, NotFound):
            return
        _log.warning(
            "operation %s (%s) failed: %s",
            operation.operation_id,
            operation.operation_type.value,
            message,
        )
        self._count(failed)

    async def _backend_view(
        self, adapter: DMSAdapter, deployment: DeploymentRecord
    ) -> DeploymentInfo | None:
        """What the backend holds for ``deployment`` now; None when it cannot say."""
        if deployment.backend_ref is None:
            return None
        try:
            return observed(await adapter.get_deployment(deployment.backend_ref))
        except NotFound:
            return DeploymentInfo(
                backend_ref=deployment.backend_ref,
                status=DeploymentStatus.DELETED,
                revision=deployment.revision,
            )
        except NetweaveError as exc:
            return DeploymentInfo(
                backend_ref=deployment.backend_ref,
                status=DeploymentStatus.UNKNOWN,
                revision=deployment.revision,
                message=f"backend unreachable: {exc.message}",
            )

    # -- the rollback way out ------------------------------------------------------------------

    async def _roll_back(self, claimed: OperationRecord) -> bool:
        """Restore what the deployment was before ``claimed`` failed → ROLLED_BACK."""
        async with self._hooks.change(self._store) as events:
            deployment = await self._store.get_deployment(claimed.deployment_id)
            if deployment is not None and deployment.status is not DeploymentStatus.ROLLING_BACK:
                deployment = await self._store.update_deployment(
                    deployment.deployment_id,
                    status=DeploymentStatus.ROLLING_BACK,
                    status_message=f"rolling back operation {claimed.operation_id}",
                    updated_at=now(),
                )
                events.deployment("DeploymentChanged", deployment)
        adapter: DMSAdapter | None = None
        try:
            adapter = self._registry.owner(claimed.adapter)
            ctx = OperationContext(
                operation_id=claimed.operation_id,
                idempotency_key=rollback_key(claimed),
                attempt=claimed.attempts,
            )
            deadline = time.monotonic() + adapter.config.timeouts.write
            if deployment is None or claimed.operation_type is OperationType.CREATE:
                # Before a create there was nothing: whatever it left goes.
                if deployment is not None and deployment.backend_ref is not None:
                    with contextlib.suppress(NotFound):
                        await adapter.delete_deployment(deployment.backend_ref, ctx)
                    await self._await_gone(adapter, deployment.backend_ref, deadline)
                return await self._finish(
                    claimed,
                    deployment,
                    None,
                    state=OperationState.ROLLED_BACK,
                    expected=OperationState.ROLLING_BACK,
                )
            info, prior = await self._restore(adapter, claimed, deployment, ctx)
            info = observed((await self._settle(adapter, info, deadline, time.monotonic()))[0])
            unmet = self._unmet_restore(info, prior)
        except Exception as exc:
            if not isinstance(exc, NetweaveError):
                _log.exception("operation %s: unexpected error in rollback", claimed.operation_id)
            await self._fail(
                claimed,
                deployment,
                exc,
                adapter=adapter,
                expected=OperationState.ROLLING_BACK,
            )
            return False
        if unmet is not None:
            await self._fail(
                claimed, deployment, unmet, reported=info, expected=OperationState.ROLLING_BACK
            )
            return False
        changes = self._restored(deployment, info, prior)
        return await self._finish(
            claimed,
            deployment,
            info,
            state=OperationState.ROLLED_BACK,
            expected=OperationState.ROLLING_BACK,
            changes=changes,
        )

    async def _known(self, deployment: DeploymentRecord) -> KnownState:
        """The deployment as the store records it (revision, package, values) for the
        adapter of an update/scale, which then need not read them back from the backend."""
        current = await self._store.get_package(deployment.package_id)
        return KnownState(
            revision=deployment.revision,
            package=package_to_info(current) if current is not None else None,
            values=dict(deployment.values or {}),
        )

    async def _restore(
        self,
        adapter: DMSAdapter,
        operation: OperationRecord,
        deployment: DeploymentRecord,
        ctx: OperationContext,
    ) -> tuple[DeploymentInfo, dict[str, Any]]:
        """Start restoring the state recorded in the operation's ``before`` (see the service):
        the backend's own rollback to the prior revision where it has one, else the prior
        package and values applied again."""
        prior: dict[str, Any] = dict(operation.params.get("before") or {})
        ref = deployment.backend_ref
        if ref is None or not prior:
            raise Conflict(
                f"operation {operation.operation_id} has no record of the state before it; "
                "retry it or mark it failed",
                details={"operationId": operation.operation_id},
            )
        revision = int(prior.get("revision") or 0)
        if adapter.supports(Capability.ROLLBACK) and revision > 0:
            return await adapter.rollback_deployment(ref, revision, ctx), prior
        package = None
        if prior.get("packageId"):
            record = await self._store.get_package(str(prior["packageId"]))
            package = package_to_info(record) if record is not None else None
        change = DeploymentChange(
            values=dict(prior.get("values") or {}), package=package, values_mode="replace"
        )
        return await adapter.update_deployment(ref, change, ctx), prior

    @staticmethod
    def _unmet_restore(info: DeploymentInfo, prior: dict[str, Any]) -> NetweaveError | None:
        details: dict[str, Any] = {"deploymentStatus": info.status.value}
        if info.status in _SETTLING:
            return BackendTimeout(
                f"after the rollback the backend still reports {info.status.value} after the "
                "adapter's write timeout",
                details=details,
            )
        if info.status not in _SETTLED_OK:
            return BackendError(
                info.message or f"after the rollback the backend reports {info.status.value}",
                details=details,
            )
        version = prior.get("packageVersion")
        if version and info.package_version is not None and info.package_version != version:
            return BackendError(
                f"after the rollback the backend runs package version {info.package_version}, "
                f"not the prior {version}",
                details=details,
            )
        return None

    @staticmethod
    def _restored(
        deployment: DeploymentRecord, info: DeploymentInfo, prior: dict[str, Any]
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "status": info.status,
            "status_message": info.message,
            "revision": info.revision,
            "backend_ref": info.backend_ref,
            "values": info.values if info.values is not None else prior.get("values") or {},
            "updated_at": now(),
        }
        if prior.get("packageId"):
            changes["package_id"] = prior["packageId"]
        version = info.package_version or prior.get("packageVersion")
        if version:
            changes["package_version"] = version
        return changes

    def _count(self, operation: OperationRecord) -> None:
        self._metrics.child(
            self._metrics.operations,
            operation.adapter,
            operation.operation_type.value,
            operation.state.value,
        ).inc()

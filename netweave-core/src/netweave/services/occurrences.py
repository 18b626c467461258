"""Operation occurrences as a resource: list, get, and the client tasks retry / fail / rollback /
cancel (rules in :mod:`netweave.operations.state_machine`)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from netweave.adapters.times import now
from netweave.errors import Conflict, InvalidInput, NotFound
from netweave.models import (
    DeploymentStatus,
    Operation,
    OperationList,
    OperationState,
    OperationType,
    ProblemDetails,
)
from netweave.models.operations import CLAIMABLE_STATES
from netweave.models.paths import operation_path
from netweave.operations import state_machine
from netweave.operations.convert import operation_to_wire
from netweave.operations.events import HookBus
from netweave.services.deployments import WorkerHandle
from netweave.store import OperationRecord, Store
from netweave.waiting import wait_event

#: Longest a follower waits (``Prefer: wait``): below common client and proxy read timeouts.
MAX_FOLLOW_SECONDS = 30.0
#: How often a follower re-reads the store meanwhile: it learns of a run in another replica,
#: or of a state set by a request (cancel, fail), within this time.
_FOLLOW_READ_INTERVAL = 0.5


class FollowableWorker(WorkerHandle, Protocol):
    def run_ended(self, operation_id: str) -> asyncio.Event: ...


class OperationService:
    def __init__(self, store: Store, hooks: HookBus, worker: FollowableWorker) -> None:
        self._store = store
        self._hooks = hooks
        self._worker = worker

    async def query(
        self,
        *,
        deployment_id: str | None = None,
        state: OperationState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> OperationList:
        page = await self._store.list_operations(
            deployment_id=deployment_id, state=state, limit=limit, offset=offset
        )
        return OperationList(
            items=[operation_to_wire(r) for r in page.items],
            total=page.total,
            limit=limit,
            offset=offset,
        )

    async def record(self, operation_id: str) -> OperationRecord:
        record = await self._store.get_operation(operation_id)
        if record is None:
            raise NotFound(
                f"operation {operation_id!r} not found", details={"operationId": operation_id}
            )
        return record

    async def get(self, operation_id: str) -> Operation:
        return operation_to_wire(await self.record(operation_id))

    async def follow(self, operation_id: str, seconds: float) -> Operation:
        """The operation once it is no longer under way (STARTING, PROCESSING, ROLLING_BACK),
        or as it is after ``seconds`` (at most ``MAX_FOLLOW_SECONDS``): a client following
        it learns of its end when it happens, without polling. Woken by the end of its run in
        this process; re-read every ``_FOLLOW_READ_INTERVAL`` for a run elsewhere."""
        deadline = time.monotonic() + min(max(seconds, 0.0), MAX_FOLLOW_SECONDS)
        while True:
            # Taken before the read: a run ending between the two still wakes this follower.
            ended = self._worker.run_ended(operation_id)
            record = await self.record(operation_id)
            left = deadline - time.monotonic()
            if record.state not in CLAIMABLE_STATES or left <= 0:
                return operation_to_wire(record)
            await wait_event(ended, min(left, _FOLLOW_READ_INTERVAL))

    async def retry(self, operation_id: str) -> Operation:
        record = await self.record(operation_id)
        state_machine.check_retry(operation_id, record.state)
        if await self._store.get_deployment(record.deployment_id) is None and (
            record.operation_type.value != "DELETE"
        ):
            raise InvalidInput(
                f"deployment {record.deployment_id} of operation {operation_id} no longer exists"
            )
        async with self._hooks.change(self._store, on_commit=self._worker.wake) as events:
            updated = await self._store.update_operation(
                operation_id,
                expected_state=OperationState.FAILED_TEMP,
                state=OperationState.PROCESSING,
                error=None,
                lease_owner=None,
                lease_expires_at=None,
            )
            wire = operation_to_wire(updated)
            events.operation(wire, record.state.value)
        return wire

    async def fail(self, operation_id: str) -> Operation:
        record = await self.record(operation_id)
        state_machine.check_fail(operation_id, record.state)
        async with self._hooks.change(self._store) as events:
            updated = await self._store.update_operation(
                operation_id, expected_state=OperationState.FAILED_TEMP, state=OperationState.FAILED
            )
            wire = operation_to_wire(updated)
            events.operation(wire, record.state.value)
        return wire

    async def rollback(self, operation_id: str) -> Operation:
        """FAILED_TEMP → ROLLING_BACK; the worker restores the state before the operation."""
        record = await self.record(operation_id)
        state_machine.check_rollback(operation_id, record.state)
        if record.operation_type is OperationType.DELETE:
            raise Conflict(
                f"operation {operation_id} is a DELETE: a delete cannot be rolled back; "
                f"retry it (POST {operation_path(operation_id, 'retry')}) or mark it failed "
                f"(POST {operation_path(operation_id, 'fail')})",
                details={"operationId": operation_id, "task": "rollback"},
            )
        async with self._hooks.change(self._store, on_commit=self._worker.wake) as events:
            updated = await self._store.update_operation(
                operation_id,
                expected_state=OperationState.FAILED_TEMP,
                state=OperationState.ROLLING_BACK,
                lease_owner=None,
                lease_expires_at=None,
            )
            wire = operation_to_wire(updated)
            events.operation(wire, record.state.value)
        return wire

    async def cancel(self, operation_id: str) -> Operation:
        record = await self.record(operation_id)
        state_machine.check_cancel(operation_id, record.state)
        problem = ProblemDetails(
            type="urn:netweave:problem:Cancelled",
            title="Operation cancelled",
            status=409,
            detail="cancelled by a client",
            error="Cancelled",
            message="cancelled by a client",
            code=409,
            instance=operation_path(operation_id),
        )
        # The state is committed first, so the runner's next compare-and-set fails even if
        # another replica runs it; the local task (if any) is interrupted right after commit.
        async with self._hooks.change(
            self._store, on_commit=lambda: self._worker.cancel_local(operation_id)
        ) as events:
            updated = await self._store.update_operation(
                operation_id,
                expected_state=record.state,
                state=OperationState.FAILED_TEMP,
                error=problem.model_dump(exclude_none=True),
                lease_owner=None,
                lease_expires_at=None,
            )
            deployment = await self._store.get_deployment(record.deployment_id)
            if deployment is not None:
                deployment = await self._store.update_deployment(
                    record.deployment_id,
                    status=DeploymentStatus.FAILED,
                    status_message=f"operation {operation_id} cancelled",
                    updated_at=now(),
                )
                events.deployment("DeploymentChanged", deployment)
            wire = operation_to_wire(updated)
            events.operation(wire, record.state.value)
        return wire

"""An operation stored by a request of this process is handed to its worker when the worker runs
nothing and nothing waits to be claimed: stored already leased to the worker, it starts at the
commit, without the wake-up and the claim query. Otherwise (a backlog, operations running or
handed over) it waits for a claim as before, oldest first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netweave.models import DeploymentRequest, OperationState, OperationType
from netweave.operations.metrics import Metrics
from netweave.operations.worker import OperationWorker
from netweave.store import OperationRecord
from netweave.testing.polling import until
from support.gateway import running_gateway


def _operation(operation_id: str) -> OperationRecord:
    stamp = datetime.now(UTC)
    return OperationRecord(
        operation_id=operation_id,
        operation_type=OperationType.CREATE,
        deployment_id=f"d-{operation_id}",
        adapter="mem",
        state=OperationState.STARTING,
        start_time=stamp,
        state_entered_time=stamp,
    )


class Claims:
    """The store's claim side: ``pending`` operations, each claim counted."""

    def __init__(self, pending: list[OperationRecord]) -> None:
        self.pending = pending
        self.claims = 0

    async def claim_operations(
        self, *, owner: str, lease_seconds: float, limit: int, now: datetime
    ) -> list[OperationRecord]:
        self.claims += 1
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        return taken

    async def release_lease(self, operation_id: str, *, owner: str) -> None:
        return None


class HeldRunner:
    """Runs hold until the test ends them."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.started: list[str] = []

    async def run(self, operation: Any) -> bool:
        self.started.append(operation.operation_id)
        await self.done.wait()
        return True


async def _worker(store: Claims, runner: HeldRunner, concurrency: int = 2) -> OperationWorker:
    worker = OperationWorker(
        store,  # type: ignore[arg-type]
        runner,  # type: ignore[arg-type]
        Metrics(),
        concurrency=concurrency,
        poll_interval=30.0,  # no poll: only wake-ups claim
    )
    worker.start()
    await until(lambda: store.claims >= 1, what="the worker's first claim", every=0.005)
    return worker


async def test_a_new_operation_is_leased_and_started_at_its_commit() -> None:
    store, runner = Claims([]), HeldRunner()
    worker = await _worker(store, runner)
    try:
        leased = worker.lease_new(_operation("new"))
        assert leased.lease_owner == worker.owner
        assert leased.lease_expires_at is not None
        worker.adopt(leased)
        assert worker.running == {"new"}  # at once: no claim round
        await until(lambda: runner.started == ["new"], what="the run", every=0.005)
        assert store.claims == 1
    finally:
        runner.done.set()
        await worker.stop()


async def test_an_operation_waiting_to_be_claimed_goes_first() -> None:
    store, runner = Claims([]), HeldRunner()
    worker = await _worker(store, runner)
    try:
        # Another request stored one that was not handed over (e.g. no slot was free then).
        store.pending.append(_operation("older"))
        worker.wake()
        newer = worker.lease_new(_operation("newer"))
        assert newer.lease_owner is None  # it waits for a claim, after the older one
        worker.adopt(newer)
        store.pending.append(newer)
        await until(lambda: worker.running == {"older", "newer"}, what="both claimed")
        assert runner.started == ["older", "newer"]
    finally:
        runner.done.set()
        await worker.stop()


async def test_no_lease_while_one_is_kept_or_runs() -> None:
    store, runner = Claims([]), HeldRunner()
    worker = await _worker(store, runner, concurrency=1)
    try:
        first = worker.lease_new(_operation("first"))
        assert first.lease_owner == worker.owner
        # Its slot is kept: a second one is not leased, and a claim would take none.
        assert worker.lease_new(_operation("second")).lease_owner is None
        assert await worker.run_pending_once() == 0
        worker.release("first")  # not stored after all
        third = worker.lease_new(_operation("third"))
        assert third.lease_owner == worker.owner
        worker.adopt(third)
        # Under load the claims take them in batches: none is handed over while one runs.
        assert worker.lease_new(_operation("fourth")).lease_owner is None
    finally:
        runner.done.set()
        await worker.stop()


async def test_a_created_deployment_runs_without_a_claim(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as gw:
        services = gw.app.state.services
        worker = services.worker
        memory = gw.adapters["mem"]
        gate = memory.hang("create_deployment")
        await gw.register_package("app", "1.0.0")
        await worker.run_pending_once()  # nothing waits to be claimed
        claims = 0
        claim = gw.store.claim_operations

        async def counted(**kwargs: Any) -> list[OperationRecord]:
            nonlocal claims
            found = await claim(**kwargs)
            claims += len(found)
            return found

        gw.store.claim_operations = counted  # type: ignore[method-assign]
        request = DeploymentRequest(name="web", package_id="app-1.0.0")
        accepted = await services.deployments.create(request)
        operation_id = accepted.operation.operation_id
        # Running as the create returns, stored leased to this worker.
        assert operation_id in worker.running
        stored = await gw.store.get_operation(operation_id)
        assert stored is not None and stored.lease_owner == worker.owner
        gate.set()
        done = await gw.wait_operation(operation_id)
        assert done["state"] == "COMPLETED"
        assert claims == 0  # no claim took it
        assert [r.name for r in memory.releases.values()] == ["web"]

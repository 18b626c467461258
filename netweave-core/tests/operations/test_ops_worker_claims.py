"""The worker claims in batches under load: woken with fewer than a quarter of its slots
free it waits for more, so a stream of finishing operations costs one claim per batch, not
one per operation; the poll still claims a single free slot."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from netweave.operations.metrics import Metrics
from netweave.operations.worker import OperationWorker


class Backlog:
    """The store's claim side: ``pending`` operations, each claim recorded by its limit."""

    def __init__(self, count: int) -> None:
        self.pending = [SimpleNamespace(operation_id=f"op-{n}") for n in range(count)]
        self.claims: list[int] = []

    async def claim_operations(
        self, *, owner: str, lease_seconds: float, limit: int, now: datetime
    ) -> list[Any]:
        self.claims.append(limit)
        taken, self.pending = self.pending[:limit], self.pending[limit:]
        return taken

    async def release_lease(self, operation_id: str, *, owner: str) -> None:
        return None


class HeldRunner:
    """Runs hold until the test finishes them one by one."""

    def __init__(self) -> None:
        self.finish: dict[str, asyncio.Event] = {}

    async def run(self, operation: Any) -> bool:
        event = self.finish.setdefault(operation.operation_id, asyncio.Event())
        await event.wait()
        return True  # settled: no lease to release


async def settle(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def worker_of(store: Backlog, runner: HeldRunner, poll_interval: float) -> OperationWorker:
    """Eight slots (claims of two when woken) over 20 pending operations."""
    worker = OperationWorker(
        store,  # type: ignore[arg-type]
        runner,  # type: ignore[arg-type]
        Metrics(),
        concurrency=8,
        poll_interval=poll_interval,
    )
    worker.start()
    return worker


async def test_woken_claims_wait_for_a_quarter_of_the_slots() -> None:
    store, runner = Backlog(20), HeldRunner()
    worker = worker_of(store, runner, poll_interval=30.0)  # no poll: only wake-ups claim
    try:
        await settle(lambda: len(worker.running) == 8)
        assert store.claims == [8]
        running = sorted(worker.running, key=lambda op: int(op.split("-")[1]))
        runner.finish[running[0]].set()  # one slot free: below the batch of 2, no claim
        await settle(lambda: len(worker.running) == 7)
        await asyncio.sleep(0.05)
        assert store.claims == [8]
        runner.finish[running[1]].set()  # two free: claimed together
        await settle(lambda: len(worker.running) == 8)
        assert store.claims == [8, 2]
    finally:
        await worker.stop()


async def test_the_poll_claims_a_single_free_slot() -> None:
    store, runner = Backlog(20), HeldRunner()
    worker = worker_of(store, runner, poll_interval=0.1)
    try:
        await settle(lambda: len(worker.running) == 8)
        first = min(worker.running, key=lambda op: int(op.split("-")[1]))
        runner.finish[first].set()
        await settle(lambda: len(worker.running) == 8 and len(store.pending) == 11)
        assert store.claims[0] == 8 and 1 in store.claims[1:]
    finally:
        await worker.stop()

"""The in-process operation worker: claims operations from the store and runs them.

Claims use the store's leases (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so with several
replicas each operation runs in one of them. While an operation runs its lease is renewed every
third of the lease time; losing the lease (another owner took it) cancels the local run. On
start-up nothing special is needed to resume work a dead process left STARTING or PROCESSING:
its lease expires and the claim query picks it up, and the runner repeats the step with the same
idempotency key.

The claim loop runs until ``stop()``; each pass sleeps ``poll_interval`` or until ``wake()``
(called when a request stored a new operation), so it is bounded by the worker's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import weakref
from datetime import UTC, datetime

from netweave.operations.metrics import Metrics
from netweave.operations.runner import OperationRunner
from netweave.store import OperationRecord, Store, urgent_writes
from netweave.waiting import wait_event

_log = logging.getLogger("netweave.worker")


def default_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OperationWorker:
    def __init__(
        self,
        store: Store,
        runner: OperationRunner,
        metrics: Metrics,
        *,
        owner: str | None = None,
        concurrency: int = 4,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
    ) -> None:
        self._store = store
        self._runner = runner
        self._metrics = metrics
        self.owner = owner or default_owner_id()
        self._concurrency = concurrency
        # Woken with fewer slots free than this, the worker waits for more (or the poll) before
        # claiming: one claim per quarter of the slots, not one per finished operation. The
        # slots still taken keep the adapters busy meanwhile (there are twice as many by
        # default as the Helm adapter's own limit).
        self._claim_batch = max(1, concurrency // 4)
        self._lease_seconds = lease_seconds
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Per operation, the event its followers (``GET …?`` with ``Prefer: wait``) wait on:
        #: set when a run of it here ends. Weak: gone with the last follower.
        self._followers: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        # Followers learn of the end once its write committed (also at the run's end below).
        runner.on_settled = self._wake_followers

    @property
    def running(self) -> set[str]:
        return set(self._tasks)

    def start(self) -> None:
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self._loop(), name="netweave-operation-worker")

    def wake(self) -> None:
        self._wakeup.set()

    def run_ended(self, operation_id: str) -> asyncio.Event:
        """An event set when a run of ``operation_id`` in this process ends (its last state
        written). A run elsewhere (another replica) never sets it: followers also re-read."""
        event = self._followers.get(operation_id)
        if event is None:
            event = asyncio.Event()
            self._followers[operation_id] = event
        return event

    def _wake_followers(self, operation_id: str) -> None:
        ended = self._followers.pop(operation_id, None)
        if ended is not None:
            ended.set()

    def cancel_local(self, operation_id: str) -> bool:
        """Cancel the run of an operation in this process, if it runs here."""
        task = self._tasks.get(operation_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        # Each run releases its lease in ``finally``, so a restart resumes it at once.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_pending_once(self, *, min_free: int = 1) -> int:
        """Claim and start what is claimable now, if at least ``min_free`` slots are free (used
        by the loop; handy in tests)."""
        free = self._concurrency - len(self._tasks)
        if free < max(1, min_free):
            return 0
        claimed = await self._store.claim_operations(
            owner=self.owner,
            lease_seconds=self._lease_seconds,
            limit=free,
            now=datetime.now(UTC),
        )
        for operation in claimed:
            if operation.operation_id in self._tasks:
                continue
            self._tasks[operation.operation_id] = asyncio.create_task(
                self._run(operation), name=f"netweave-operation-{operation.operation_id}"
            )
        return len(claimed)

    async def _loop(self) -> None:
        urgent_writes()  # this task's context, inherited by the runs it starts
        woken = False
        while not self._stopping:
            self._wakeup.clear()
            try:
                await self.run_pending_once(min_free=self._claim_batch if woken else 1)
            except Exception:
                _log.exception("claiming operations failed; retrying")
            woken = await wait_event(self._wakeup, self._poll_interval)

    async def _run(self, operation: OperationRecord) -> None:
        operation_id = operation.operation_id
        self._metrics.operations_running.inc()
        renewer = asyncio.create_task(self._renew(operation_id))
        settled = False
        try:
            settled = await self._runner.run(operation)
        except asyncio.CancelledError:
            _log.info("operation %s: run cancelled in this process", operation_id)
        except Exception:
            _log.exception("operation %s: runner crashed", operation_id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._tasks.pop(operation_id, None)
            self._metrics.operations_running.dec()
            # Its followers read the state the run left (a fresh event for later ones).
            self._wake_followers(operation_id)
            try:
                # A settled operation's final write dropped its lease: one write fewer.
                if not settled:
                    await asyncio.shield(self._store.release_lease(operation_id, owner=self.owner))
            except Exception:
                _log.warning("operation %s: releasing the lease failed", operation_id)
            # Another operation may have been waiting for a free slot.
            self._wakeup.set()

    async def _renew(self, operation_id: str) -> None:
        interval = self._lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await self._store.renew_lease(
                    operation_id,
                    owner=self.owner,
                    lease_seconds=self._lease_seconds,
                    now=datetime.now(UTC),
                )
            except Exception:
                _log.warning("operation %s: renewing the lease failed", operation_id)
                continue
            if not held:
                try:
                    current = await self._store.get_operation(operation_id)
                except Exception:
                    current = None
                if current is not None and current.state.terminal:
                    # Settled (most likely by this run: its final write dropped the lease);
                    # nothing is left to stop, and stopping could cut its closing events.
                    return
                _log.warning("operation %s: lease lost; stopping the local run", operation_id)
                self.cancel_local(operation_id)
                return

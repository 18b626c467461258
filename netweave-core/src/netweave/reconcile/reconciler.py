"""The reconciler: between operations, each deployment's recorded state is kept true.

What it does, per replica:

* **Shards, shared through the store.** Deployments are spread over ``shards`` shards by a
  hash of their id; a replica holds a lease on its fair share of them (shards divided by the
  replicas holding leases), renewed every third of ``lease_seconds``. A replica that dies
  stops renewing: its shards' leases expire and the others take them over. So each deployment
  is reconciled by one replica at a time (the store's row locks decide a race).
* **Watch, or poll.** For an adapter that implements ``DMSAdapter.watch_deployments``
  (``WATCHES``: the Helm adapter, list+watch with bookmarks) the deployments it reports changed
  are observed at once, and every deployment again every ``resync`` seconds as a safety net.
  Others are polled every ``interval`` seconds.
* **Not twice.** A watch reports an operation's own changes too (the release it wrote, the
  objects, their controllers' status). When the operation's outcome is recorded from a read
  that began after every change reported so far (``HookBus.recorded_read``, in-process), the
  reads those reports asked for are dropped: that read, already in the store, saw all they
  could. A change reported after that read began is read as any other.
* **Bounded.** Observations toward one adapter instance are limited to ``rate`` per second
  (a token bucket) and ``concurrency`` at a time; a deployment whose backend did not answer is
  retried with exponential back-off up to ``max_interval``.
* **What it records** (``netweave.operations.observe``): status (``DEGRADED`` …), drift, and
  the ``DeploymentHealthChanged`` / ``DeploymentDriftDetected`` events through the outbox.
  Nothing while an operation holds the deployment. An unreachable backend changes nothing:
  the last recorded state stays (it is the last known truth; reads say ``UNKNOWN`` meanwhile),
  so a network blip never flips a deployment to ``DEGRADED`` or ``FAILED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from netweave.adapters import BackendChanges, Capability, DeploymentInfo, DMSAdapter
from netweave.config.registry import AdapterRegistry
from netweave.errors import BackendTimeout, BackendUnavailable, NetweaveError, NotFound
from netweave.operations.events import HookBus
from netweave.operations.observe import gone, record_observation
from netweave.operations.wakeups import wakeups_of
from netweave.store import MAX_PAGE_LIMIT, DeploymentRecord, Store
from netweave.waiting import wait_event

_log = logging.getLogger("netweave.reconcile")
#: Seconds a reported change waits before its read, so the events of one change coalesce.
CHANGE_SETTLE = 0.5
#: Seconds between two listings of the deployments asked for by reported unknown releases.
RELIST_GAP = 1.0


def shard_of(deployment_id: str, shards: int) -> int:
    return zlib.crc32(deployment_id.encode()) % shards


@dataclass(slots=True)
class ReconcileStats:
    """Counters for metrics and the bench."""

    observations: int = 0
    changes: int = 0
    unreachable: int = 0
    watch_batches: int = 0
    listings: int = 0
    #: Reads asked for by reported changes and dropped: an operation's recorded read covered them.
    covered: int = 0


@dataclass(slots=True)
class _Tracked:
    deployment_id: str
    adapter: str
    backend_ref: str
    due: float
    failures: int = 0
    #: A change was reported while a read was in flight: that read may predate it.
    changed_meanwhile: bool = False
    #: When (monotonic) the last change not read since was reported; None: none is.
    reported: float | None = None
    #: When it was due before that change moved it sooner.
    due_unchanged: float = 0.0


@dataclass(slots=True)
class _Bucket:
    """A token bucket: ``rate`` per second, bursts of ``rate`` (at least one)."""

    rate: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def wait_time(self) -> float:
        now = time.monotonic()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Reconciler:
    def __init__(
        self,
        store: Store,
        registry: AdapterRegistry,
        hooks: HookBus,
        *,
        owner: str,
        interval: float = 30.0,
        resync: float = 3600.0,
        max_interval: float = 300.0,
        shards: int = 64,
        lease_seconds: float = 30.0,
        rate: float = 20.0,
        concurrency: int = 4,
        list_interval: float = 30.0,
        on_observed: Callable[[str, DeploymentRecord], Awaitable[None] | None] | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._hooks = hooks
        self.owner = owner
        self.interval = interval
        self.resync = resync
        self.max_interval = max_interval
        self.shards = shards
        self.lease_seconds = lease_seconds
        self.rate = rate
        self.concurrency = concurrency
        self.list_interval = list_interval
        self._on_observed = on_observed
        self.stats = ReconcileStats()
        self.held: set[int] = set()
        self._tracked: dict[str, _Tracked] = {}
        self._by_ref: dict[tuple[str, str], str] = {}
        #: Changes reported for deployments not tracked yet (created since the last listing),
        #: with when the last one was: read at once when the listing finds them, not at their
        #: spread first read, unless a recorded read covered them (``_covered_unknown``).
        self._unknown_changed: dict[tuple[str, str], float] = {}
        self._covered_unknown: dict[tuple[str, str], float] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._relist = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._in_flight: set[str] = set()
        hooks.on_recorded_read(self.read_recorded)
        #: Operations of this process settling a deployment, woken by its reports (another
        #: replica's keep their timer).
        self._wakeups = wakeups_of(hooks)

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._leases(), name="netweave-reconcile-leases"))
        self._tasks.append(asyncio.create_task(self._listing(), name="netweave-reconcile-list"))
        self._tasks.append(asyncio.create_task(self._schedule(), name="netweave-reconcile"))
        for name, adapter in self._registry.adapters.items():
            if adapter.watches and adapter.supports(Capability.DEPLOYMENT_LIFECYCLE):
                self._tasks.append(
                    asyncio.create_task(self._watch(name, adapter), name=f"netweave-watch-{name}")
                )

    async def stop(self) -> None:
        tasks = self._tasks + list(self._running)
        self._tasks = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._store.release_reconcile_shards(owner=self.owner)
        self.held = set()

    # -- shards ----------------------------------------------------------------------------

    async def claim(self) -> set[int]:
        """Take or renew this replica's fair share of the shards (also used by tests)."""
        now = datetime.now(UTC)
        owners = await self._store.reconcile_owners(now=now)
        owners.add(self.owner)
        want = math.ceil(self.shards / len(owners))
        held = set(
            await self._store.claim_reconcile_shards(
                owner=self.owner,
                shards=self.shards,
                want=want,
                lease_seconds=self.lease_seconds,
                now=now,
            )
        )
        if held != self.held:
            gained = held - self.held
            self.held = held
            if gained:
                self._relist.set()  # new shards: their deployments are ours now
            else:
                self._drop_unheld()
        return held

    def _drop_unheld(self) -> None:
        for deployment_id, tracked in list(self._tracked.items()):
            if shard_of(deployment_id, self.shards) not in self.held:
                del self._tracked[deployment_id]
                self._by_ref.pop((tracked.adapter, tracked.backend_ref), None)

    async def _leases(self) -> None:
        while True:
            try:
                await self.claim()
            except Exception:
                _log.warning("reconciler: claiming shards failed; retrying", exc_info=True)
            await asyncio.sleep(self.lease_seconds / 3)

    # -- which deployments -----------------------------------------------------------------

    async def refresh(self) -> int:
        """Read the deployments of the shards held (pages of the store's list)."""
        self.stats.listings += 1
        seen: set[str] = set()
        after: str | None = None
        now = time.monotonic()
        # Taken now: one reported while this listing runs sets off the next one.
        pending, self._unknown_changed = self._unknown_changed, {}
        covered, self._covered_unknown = self._covered_unknown, {}
        while True:
            # Only the references (not whole records), by keyset: a listing's cost stays
            # proportional to the deployments, one page at a time between requests.
            page = await self._store.deployment_refs(after=after, limit=MAX_PAGE_LIMIT)
            for deployment_id, adapter_name, backend_ref in page:
                if backend_ref is None:
                    continue
                if shard_of(deployment_id, self.shards) not in self.held:
                    continue
                seen.add(deployment_id)
                tracked = self._tracked.get(deployment_id)
                if tracked is None:
                    adapter = self._registry.adapters.get(adapter_name)
                    if adapter is None or not adapter.supports(Capability.DEPLOYMENT_LIFECYCLE):
                        continue
                    # Spread the first observations over one period, not all at once.
                    period = self.resync if adapter.watches else self.interval
                    offset_due = (zlib.crc32(deployment_id.encode()) % 1000) / 1000
                    key = (adapter_name, backend_ref)
                    reported = pending.get(key)
                    if reported is not None and reported <= covered.get(key, -math.inf):
                        self.stats.covered += 1
                        reported = None
                    tracked = self._tracked[deployment_id] = _Tracked(
                        deployment_id,
                        adapter_name,
                        backend_ref,
                        due=now if reported is not None else now + period * offset_due,
                        reported=reported,
                        due_unchanged=now + period * offset_due,
                    )
                elif tracked.backend_ref != backend_ref:
                    self._by_ref.pop((tracked.adapter, tracked.backend_ref), None)
                    tracked.backend_ref = backend_ref
                self._by_ref[(adapter_name, backend_ref)] = deployment_id
            if len(page) < MAX_PAGE_LIMIT:
                break
            after = page[-1][0]
            await asyncio.sleep(0)  # requests run between pages
        for deployment_id in set(self._tracked) - seen:
            tracked = self._tracked.pop(deployment_id)
            self._by_ref.pop((tracked.adapter, tracked.backend_ref), None)
        self._wake.set()
        return len(self._tracked)

    async def _listing(self) -> None:
        while True:
            await wait_event(self._relist, self.list_interval)
            self._relist.clear()
            try:
                await self.refresh()
            except Exception:
                _log.warning("reconciler: listing deployments failed; retrying", exc_info=True)
            # A burst of creates reports one unknown release after another: those asks made
            # meanwhile are served by one listing after the gap, not one listing each.
            await asyncio.sleep(min(RELIST_GAP, self.list_interval))

    # -- watch -----------------------------------------------------------------------------

    async def _watch(self, name: str, adapter: DMSAdapter) -> None:
        delay = 1.0
        while True:
            try:
                async for changes in adapter.watch_deployments():
                    delay = 1.0
                    self.changed(name, changes)
            except asyncio.CancelledError:
                raise
            except NotImplementedError:
                return  # declared WATCHES but does not: polled instead
            except NetweaveError as exc:
                # A known condition (no cluster configured, backend down): its message says
                # what to do; a traceback at every restart would only bury it.
                _log.warning(
                    "reconciler: watch of %s failed (%s); restarting in %.0f s",
                    name,
                    exc.message,
                    delay,
                )
            except Exception:
                _log.warning("reconciler: watch of %s failed; restarting", name, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    def changed(self, adapter: str, changes: BackendChanges) -> None:
        """The adapter says these deployments may have changed: observe them now, and wake
        the operations of this process settling them."""
        self.stats.watch_batches += 1
        now = time.monotonic()
        unknown = False
        if changes.resync:
            self._wakeups.resynced(adapter, now)
            for tracked in self._tracked.values():
                if tracked.adapter == adapter:
                    self._report(tracked, now, now)
        for ref in changes.refs:
            # Any shard's: an operation here settling it reads it now (not only at its timer).
            self._wakeups.reported(adapter, ref, now)
            deployment_id = self._by_ref.get((adapter, ref))
            if deployment_id is None:
                unknown = True  # created since the last listing, or not ours
                key = (adapter, ref)
                # Bounded: foreign objects too.
                if key in self._unknown_changed or len(self._unknown_changed) < 10_000:
                    self._unknown_changed[key] = now
                continue
            # Read after a short settle: one change (an install, an edit) is reported as
            # several object events, which then cost one read instead of one each.
            self._report(self._tracked[deployment_id], now, now + CHANGE_SETTLE)
        if unknown and changes.refs and not changes.resync:
            self._relist.set()
        self._wake.set()

    def _report(self, tracked: _Tracked, now: float, due: float) -> None:
        """A change of ``tracked`` reported at ``now``: read it by ``due``."""
        if tracked.reported is None:
            tracked.due_unchanged = tracked.due
        tracked.reported = now
        tracked.due = min(tracked.due, due)
        if tracked.deployment_id in self._in_flight:
            tracked.changed_meanwhile = True

    def read_recorded(self, adapter: str, backend_ref: str, started: float) -> None:
        """An operation recorded what a read of ``backend_ref`` that began at ``started``
        (monotonic) found (see ``HookBus.recorded_read``). The changes reported before then
        are in it: their reads are dropped. One reported later may be a change made after
        that read began (by anyone): it is still read."""
        deployment_id = self._by_ref.get((adapter, backend_ref))
        tracked = self._tracked.get(deployment_id) if deployment_id is not None else None
        if tracked is None:
            # Not tracked yet (a create): the listing that finds it decides (bounded).
            key = (adapter, backend_ref)
            if key in self._unknown_changed and (
                key in self._covered_unknown or len(self._covered_unknown) < 10_000
            ):
                self._covered_unknown[key] = started
            return
        if tracked.reported is None or tracked.reported > started:
            return
        if tracked.deployment_id in self._in_flight:
            # A read of the reconciler's own is under way and may record what it found before
            # the operation's read: the read that follows it stays.
            return
        self.stats.covered += 1
        tracked.reported = None
        tracked.due = tracked.due_unchanged
        self._wake.set()

    # -- observing -------------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            soonest = now + 5.0
            batches: dict[str, list[_Tracked]] = {}
            for tracked in list(self._tracked.values()):
                if tracked.deployment_id in self._in_flight:
                    continue
                if tracked.due <= now:
                    self._in_flight.add(tracked.deployment_id)
                    adapter = self._registry.adapters.get(tracked.adapter)
                    if adapter is not None and adapter.batch_reads:
                        batches.setdefault(tracked.adapter, []).append(tracked)
                        continue
                    self._start(self._observe(tracked))
                else:
                    soonest = min(soonest, tracked.due)
            for name, due in batches.items():
                # A round: the adapter's deployments due within the next interval join the
                # batch (read up to one interval early), so the rounds align after the first.
                for tracked in list(self._tracked.values()):
                    if (
                        tracked.adapter == name
                        and tracked.deployment_id not in self._in_flight
                        and tracked.due <= now + self.interval
                    ):
                        self._in_flight.add(tracked.deployment_id)
                        due.append(tracked)
                # One backend call reads a round's deployments (bounded pages of them).
                size = self._registry.adapters[name].BATCH_READ_SIZE
                for start in range(0, len(due), size):
                    self._start(self._observe_batch(name, due[start : start + size]))
            await wait_event(self._wake, max(0.01, soonest - time.monotonic()))

    def _start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def _slot(self, adapter: str) -> tuple[asyncio.Semaphore, _Bucket]:
        if adapter not in self._slots:
            self._slots[adapter] = asyncio.Semaphore(self.concurrency)
            self._buckets[adapter] = _Bucket(self.rate)
        return self._slots[adapter], self._buckets[adapter]

    async def _observe(self, tracked: _Tracked) -> None:
        slot, bucket = self._slot(tracked.adapter)
        try:
            async with slot:
                wait = bucket.wait_time()
                while wait > 0:  # the bucket's refill time: bounded, no event to wait for
                    await asyncio.sleep(wait)
                    wait = bucket.wait_time()
                tracked.changed_meanwhile = False
                tracked.reported = None  # this read covers them
                ok = await self.observe_once(tracked.deployment_id)
            self._next_read(tracked, ok)
        finally:
            self._in_flight.discard(tracked.deployment_id)
            self._wake.set()

    async def _observe_batch(self, name: str, batch: list[_Tracked]) -> None:
        """A poll round of an adapter with ``batch_reads``: one backend call for ``batch``."""
        slot, bucket = self._slot(name)
        try:
            async with slot:
                wait = bucket.wait_time()
                while wait > 0:  # the bucket's refill time: bounded, no event to wait for
                    await asyncio.sleep(wait)
                    wait = bucket.wait_time()
                for tracked in batch:
                    tracked.changed_meanwhile = False
                    tracked.reported = None  # this read covers them
                reads: dict[str, DeploymentInfo | NetweaveError] | None = None
                try:
                    adapter = self._registry.owner(name)
                    reads = await adapter.get_deployments([t.backend_ref for t in batch])
                except NetweaveError as exc:
                    self.stats.unreachable += len(batch)
                    _log.info("reconciler: %s unreachable: %s", name, exc.message)
            ids = [t.deployment_id for t in batch]
            # One query each for the round's records and for the operations holding any of
            # them (taken after the read: an operation started while it ran wins).
            records = await self._store.get_deployments(ids)
            busy = await self._store.busy_deployments(ids)
            for tracked in batch:
                read = None if reads is None else reads.get(tracked.backend_ref)
                if read is None:
                    ok = False
                elif tracked.deployment_id in busy:
                    ok = True  # the operation's own outcome will say
                else:
                    record = records.get(tracked.deployment_id)
                    ok = record is None or await self._record(record, read)
                self._next_read(tracked, ok)
        finally:
            for tracked in batch:
                self._in_flight.discard(tracked.deployment_id)
            self._wake.set()

    def _next_read(self, tracked: _Tracked, ok: bool) -> None:
        adapter = self._registry.adapters.get(tracked.adapter)
        watched = adapter is not None and adapter.watches
        period = self.resync if watched else self.interval
        if ok:
            tracked.failures = 0
            tracked.due = time.monotonic() + period
        else:
            tracked.failures += 1
            tracked.due = time.monotonic() + self.backoff(tracked.failures, watched=watched)
        if ok and tracked.changed_meanwhile:
            tracked.due = time.monotonic()  # read again: the change may postdate the read

    def backoff(self, failures: int, *, watched: bool) -> float:
        """Seconds before the next read of a deployment whose backend did not answer
        ``failures`` times in a row: ``interval`` doubled per failure up to ``max_interval``.
        A polled deployment is never read sooner than its ``interval`` (a failure must not
        make it polled more often); a watched one is retried this soon although its next
        regular read is only at the ``resync``."""
        delay = min(self.interval * 2.0 ** (failures - 1), self.max_interval)
        return delay if watched else max(delay, self.interval)

    async def observe_once(
        self, deployment_id: str, read: DeploymentInfo | NetweaveError | None = None
    ) -> bool:
        """Observe one deployment and record what changed; False when its backend did not
        answer (nothing recorded then). ``read``: what a batched read already got for it."""
        record = await self._store.get_deployment(deployment_id)
        if record is None or record.backend_ref is None:
            return True
        if await self._store.active_operation_for(deployment_id) is not None:
            return True  # the operation's own outcome will say
        if read is None:
            try:
                read = await self._registry.owner(record.adapter).get_deployment(record.backend_ref)
            except NetweaveError as exc:
                read = exc
        # An operation may have started while the backend was read: its outcome wins.
        if await self._store.active_operation_for(deployment_id) is not None:
            return True
        return await self._record(record, read)

    async def _record(self, record: DeploymentRecord, read: DeploymentInfo | NetweaveError) -> bool:
        """Record what a read of ``record``'s backend found (no operation holds it); False when
        the backend did not answer."""
        deployment_id = record.deployment_id
        if record.backend_ref is None:
            return True
        try:
            if isinstance(read, NetweaveError):
                raise read
            info = read
        except NotFound:
            info = gone(record)
        except (BackendUnavailable, BackendTimeout) as exc:
            self.stats.unreachable += 1
            _log.info("reconciler: %s unreachable: %s", deployment_id, exc.message)
            return False
        except NetweaveError as exc:
            self.stats.unreachable += 1
            _log.warning("reconciler: observing %s failed: %s", deployment_id, exc.message)
            return False
        self.stats.observations += 1
        try:
            updated = await record_observation(self._store, self._hooks, record, info)
        except NotFound:
            return True  # deleted meanwhile
        if updated is not record:
            self.stats.changes += 1
            if self._on_observed is not None:
                result = self._on_observed(deployment_id, updated)
                if result is not None:
                    await result
        return True


__all__ = ["ReconcileStats", "Reconciler", "shard_of"]

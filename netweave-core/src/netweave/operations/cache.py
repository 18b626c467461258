"""A small in-process read cache with a TTL, whole-cache invalidation and single-flight misses.

``generation`` guards against a race: a reader that started before an invalidation must not
store its (older) answer after it, so ``put`` ignores values computed under an old generation.

``get_or_compute`` coalesces concurrent misses of one key: the first caller starts the
computation as a task of its own and every caller (the first included) awaits it shielded, so
under load an expired entry costs one query rather than one per request in flight (a thundering
herd), and a caller that is cancelled (client gone) does not cancel the others' answer. A
flight belongs to the generation it started in: a caller arriving after an invalidation starts
a new flight instead of joining one that may have read the data before the write.

An entry that has just expired (within one more ``ttl``) is still answered while a single
refresh of it runs in the background, so a busy key never makes its readers wait for the
query: what a reader sees is at most about ``ttl`` plus one query old. ``invalidate`` drops
all entries, stale ones included, so a change made through this process is never hidden.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic


class ReadCache:
    """Bounded by entries and by the bytes it holds (a page of 1 000 packages is ~0.5 MB):
    past either bound the oldest entries go first."""

    def __init__(
        self, ttl: float, *, max_entries: int = 4096, max_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.generation = 0
        self.size = 0
        self._entries: dict[Hashable, tuple[float, bytes]] = {}
        self._flights: dict[Hashable, tuple[int, asyncio.Task[bytes]]] = {}

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < monotonic():
            self._drop(key)
            return None
        return entry[1]

    def put(self, key: Hashable, value: bytes, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation or len(value) > self.max_bytes:
            return
        self._drop(key)
        # Dicts keep insertion order: the first entries are the oldest.
        while self._entries and (
            len(self._entries) >= self.max_entries or self.size + len(value) > self.max_bytes
        ):
            self._drop(next(iter(self._entries)))
        self._entries[key] = (monotonic() + self.ttl, value)
        self.size += len(value)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[1])

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()
        self.size = 0
        # Running flights finish for the callers already waiting on them (their request began
        # before the change); new callers must not join them, so they are forgotten here.
        self._flights.clear()

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached value of ``key``, or ``compute()``'s, computed once for concurrent misses."""
        entry = self._entries.get(key)
        if entry is not None:
            expires, value = entry
            now = monotonic()
            if now <= expires:
                return value
            if now <= expires + self.ttl:
                self._flight(key, compute)  # refreshed for the next readers, not awaited
                return value
            self._drop(key)
        return await asyncio.shield(self._flight(key, compute))

    def _flight(
        self, key: Hashable, compute: Callable[[], Awaitable[bytes]]
    ) -> asyncio.Task[bytes]:
        flight = self._flights.get(key)
        if flight is not None and flight[0] == self.generation:
            return flight[1]
        generation = self.generation
        task = asyncio.ensure_future(self._fly(key, compute, generation))
        self._flights[key] = (generation, task)
        task.add_done_callback(lambda done: self._landed(key, done))
        return task

    async def _fly(
        self, key: Hashable, compute: Callable[[], Awaitable[bytes]], generation: int
    ) -> bytes:
        value = await compute()
        self.put(key, value, generation)
        return value

    def _landed(self, key: Hashable, task: asyncio.Task[bytes]) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight[1] is task:
            del self._flights[key]
        if not task.cancelled():
            # Retrieved here so an error nobody is left to await is not logged as "never
            # retrieved"; the callers still waiting get it from their own await.
            task.exception()

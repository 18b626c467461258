"""A small in-process read cache with a TTL and whole-cache invalidation.

``generation`` guards against a race: a reader that started before an invalidation must not
store its (older) answer after it, so ``put`` ignores values computed under an old generation.
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class ReadCache:
    def __init__(self, ttl: float, *, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[Hashable, tuple[float, bytes]] = {}

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, value: bytes, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded; refilled by the next reads
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

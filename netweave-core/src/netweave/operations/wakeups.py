"""Watch reports wake the operations settling the deployments they name (in-process).

The runner polls a deployment on its way (``OperationRunner._settle``) on a timer; the
reconciler already receives every report of a watched adapter (``Reconciler.changed``). It
tells :class:`Wakeups`, and an operation settling that ``(adapter, backend_ref)`` reads it at
once instead of at its next timed poll. The timer stays the fallback (adapters that do not
watch, lost events, the reconciler turned off).

In-process only: a report wakes the operations of this process's runner. Another replica's
operation on the same deployment is not woken and keeps its timer (its own watch, when it
has one, wakes it).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from netweave.operations.events import HookBus

#: Reports remembered for a settle that starts just after them (bounded: foreign refs too).
_KEPT = 10_000


class Wakeups:
    """Operations settling, by ``(adapter, backend_ref)``, and recent reports."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], set[asyncio.Event]] = {}
        #: Settles waiting, by adapter (the sum of its sets in ``_waiting``).
        self._settling: dict[str, int] = {}
        #: When (monotonic) the last report of each ref came, most recent last.
        self._reported: dict[tuple[str, str], float] = {}
        #: When the adapter's watch last restarted from a list (anything may have changed).
        self._resynced: dict[str, float] = {}

    def reported(self, adapter: str, backend_ref: str, at: float) -> None:
        """The watch of ``adapter`` reports ``backend_ref`` may have changed at ``at``."""
        key = (adapter, backend_ref)
        self._reported.pop(key, None)
        self._reported[key] = at
        if len(self._reported) > _KEPT:
            del self._reported[next(iter(self._reported))]
        for event in self._waiting.get(key, ()):
            event.set()

    def resynced(self, adapter: str, at: float) -> None:
        """The watch of ``adapter`` restarted from a fresh list: any deployment may have changed."""
        self._resynced[adapter] = at
        for (name, _ref), events in self._waiting.items():
            if name == adapter:
                for event in events:
                    event.set()

    def settling(self, adapter: str) -> int:
        """How many operations are settling deployments of ``adapter`` now."""
        return self._settling.get(adapter, 0)

    @contextmanager
    def waiting(self, adapter: str, backend_ref: str, since: float) -> Iterator[asyncio.Event]:
        """An event set by each report of ``backend_ref`` while the block runs; set at once when
        one came at or after ``since`` (when the read the caller holds began: it may predate the
        change). The caller clears it before each read."""
        key = (adapter, backend_ref)
        event = asyncio.Event()
        last = max(self._reported.get(key, -math.inf), self._resynced.get(adapter, -math.inf))
        if last >= since:
            event.set()
        self._waiting.setdefault(key, set()).add(event)
        self._settling[adapter] = self._settling.get(adapter, 0) + 1
        try:
            yield event
        finally:
            if self._settling[adapter] > 1:
                self._settling[adapter] -= 1
            else:
                del self._settling[adapter]
            events = self._waiting.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[key]


#: One registry per hook bus: a gateway's runner and reconciler share their bus (and tests
#: running several gateways in one process keep theirs apart).
_registries: weakref.WeakKeyDictionary[HookBus, Wakeups] = weakref.WeakKeyDictionary()


def wakeups_of(hooks: HookBus) -> Wakeups:
    """The registry the runner and the reconciler built on ``hooks`` share."""
    registry = _registries.get(hooks)
    if registry is None:
        registry = _registries[hooks] = Wakeups()
    return registry


__all__ = ["Wakeups", "wakeups_of"]

"""The object store: one global resourceVersion counter, an event log for watches."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from netweave.testing.k8s.util import JSONDict

StorageKey = tuple[str, str]  # (group, plural)
ObjKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class Event:
    rv: int
    skey: StorageKey
    type: str  # ADDED, MODIFIED, DELETED
    obj: JSONDict
    prev: JSONDict | None


class Store:
    """Objects by storage key; stored dicts are never mutated once stored.

    Every write replaces the stored dict, so readers (watch streams, lists)
    can hold references without copying.
    """

    def __init__(self, max_events: int = 50_000) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        # Start above zero like a real cluster; "0" means "any" to clients.
        self.rv = 1000
        self._data: dict[StorageKey, dict[ObjKey, JSONDict]] = {}
        # Indexed by namespace, and the sorted key order of each list kept until a key is
        # added or removed: a list costs its result, not a sort of every object of the kind.
        self._by_ns: dict[StorageKey, dict[str, dict[ObjKey, JSONDict]]] = {}
        self._order: dict[tuple[StorageKey, str | None], list[ObjKey]] = {}
        self._events: list[Event] = []
        self._event_rvs: list[int] = []
        self._max_events = max_events
        self.oldest_rv = self.rv
        self.closed = False

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def get(self, skey: StorageKey, ns: str, name: str) -> JSONDict | None:
        with self.lock:
            return self._data.get(skey, {}).get((ns, name))

    def items(self, skey: StorageKey, ns: str | None = None) -> list[JSONDict]:
        with self.lock:
            bucket = (
                self._data.get(skey, {}) if ns is None else self._by_ns.get(skey, {}).get(ns, {})
            )
            order = self._order.get((skey, ns))
            if order is None:
                order = self._order[(skey, ns)] = sorted(bucket)
            return [bucket[k] for k in order]

    def count(self, skey: StorageKey, ns: str | None = None) -> int:
        with self.lock:
            if ns is None:
                return len(self._data.get(skey, {}))
            return len(self._by_ns.get(skey, {}).get(ns, {}))

    def _keys_changed(self, skey: StorageKey, ns: str) -> None:
        self._order.pop((skey, None), None)
        self._order.pop((skey, ns), None)

    def all_keys(self) -> list[StorageKey]:
        with self.lock:
            return list(self._data)

    def put(self, skey: StorageKey, obj: JSONDict, etype: str, prev: JSONDict | None) -> None:
        """Store ``obj`` (its resourceVersion already set) and log the event."""
        m = obj["metadata"]
        key = (m.get("namespace") or "", m["name"])
        with self.cond:
            bucket = self._data.setdefault(skey, {})
            if key not in bucket:
                self._keys_changed(skey, key[0])
            bucket[key] = obj
            self._by_ns.setdefault(skey, {}).setdefault(key[0], {})[key] = obj
            self._log(Event(int(m["resourceVersion"]), skey, etype, obj, prev))

    def delete(self, skey: StorageKey, obj: JSONDict, rv: int) -> None:
        m = obj["metadata"]
        key = (m.get("namespace") or "", m["name"])
        with self.cond:
            prev = self._data.get(skey, {}).pop(key, None)
            if prev is not None:
                self._keys_changed(skey, key[0])
                namespace = self._by_ns.get(skey, {}).get(key[0], {})
                namespace.pop(key, None)
                if not namespace:
                    self._by_ns[skey].pop(key[0], None)
            final = dict(obj)
            final["metadata"] = dict(m, resourceVersion=str(rv))
            self._log(Event(rv, skey, "DELETED", final, prev))

    def _log(self, ev: Event) -> None:
        self._events.append(ev)
        self._event_rvs.append(ev.rv)
        if len(self._events) > self._max_events:
            cut = len(self._events) // 2
            self.oldest_rv = self._event_rvs[cut]
            del self._events[:cut]
            del self._event_rvs[:cut]
        self.cond.notify_all()

    def events_after(self, rv: int, skey: StorageKey) -> Iterator[Event]:
        with self.lock:
            start = bisect.bisect_right(self._event_rvs, rv)
            batch = self._events[start:]
        return (e for e in batch if e.skey == skey)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

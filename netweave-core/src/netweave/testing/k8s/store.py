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
        # Indexed by namespace, the sorted key order of each list kept up to date per added
        # or removed key (bisect), and objects indexed by owner uid: a list costs its result
        # and a controller's "my children" costs the children, not every object of the kind.
        self._by_ns: dict[StorageKey, dict[str, dict[ObjKey, JSONDict]]] = {}
        self._order: dict[tuple[StorageKey, str | None], list[ObjKey]] = {}
        self._by_owner: dict[str, dict[tuple[StorageKey, ObjKey], None]] = {}
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
            return [bucket[k] for k in self._sorted(skey, ns, bucket)]

    def _sorted(
        self, skey: StorageKey, ns: str | None, bucket: dict[ObjKey, JSONDict]
    ) -> list[ObjKey]:
        order = self._order.get((skey, ns))
        if order is None:  # sorted once; kept in order per change afterwards
            order = self._order[(skey, ns)] = sorted(bucket)
        return order

    def page(
        self, skey: StorageKey, ns: str | None, after: ObjKey | None, limit: int
    ) -> tuple[list[JSONDict], int]:
        """Up to ``limit`` objects after the key ``after``, and how many follow them.

        A bisect into the kept order: a page costs its size, not the kind's size.
        """
        with self.lock:
            bucket = (
                self._data.get(skey, {}) if ns is None else self._by_ns.get(skey, {}).get(ns, {})
            )
            order = self._sorted(skey, ns, bucket)
            start = 0 if after is None else bisect.bisect_right(order, after)
            keys = order[start : start + limit]
            return [bucket[k] for k in keys], max(0, len(order) - start - len(keys))

    def owned(self, uid: str, skey: StorageKey | None = None) -> list[tuple[StorageKey, JSONDict]]:
        """Objects with an ownerReference to ``uid`` (of one kind when ``skey`` is given)."""
        with self.lock:
            out = []
            for okind, okey in sorted(self._by_owner.get(uid, {})):
                if skey is not None and okind != skey:
                    continue
                obj = self._data.get(okind, {}).get(okey)
                if obj is not None:
                    out.append((okind, obj))
            return out

    def count(self, skey: StorageKey, ns: str | None = None) -> int:
        with self.lock:
            if ns is None:
                return len(self._data.get(skey, {}))
            return len(self._by_ns.get(skey, {}).get(ns, {}))

    def _key_added(self, skey: StorageKey, key: ObjKey) -> None:
        for scope in (None, key[0]):
            order = self._order.get((skey, scope))
            if order is not None:
                bisect.insort(order, key)

    def _key_removed(self, skey: StorageKey, key: ObjKey) -> None:
        for scope in (None, key[0]):
            order = self._order.get((skey, scope))
            if order is not None:
                i = bisect.bisect_left(order, key)
                if i < len(order) and order[i] == key:
                    del order[i]
        if not self._by_ns.get(skey, {}).get(key[0]):
            self._order.pop((skey, key[0]), None)

    def _owners_changed(
        self, skey: StorageKey, key: ObjKey, old: JSONDict | None, new: JSONDict | None
    ) -> None:
        before, after = _owner_uids(old), _owner_uids(new)
        if before == after:
            return
        for uid in before - after:
            children = self._by_owner.get(uid)
            if children is not None:
                children.pop((skey, key), None)
                if not children:
                    del self._by_owner[uid]
        for uid in after - before:
            self._by_owner.setdefault(uid, {})[(skey, key)] = None

    def all_keys(self) -> list[StorageKey]:
        with self.lock:
            return list(self._data)

    def put(self, skey: StorageKey, obj: JSONDict, etype: str, prev: JSONDict | None) -> None:
        """Store ``obj`` (its resourceVersion already set) and log the event."""
        m = obj["metadata"]
        key = (m.get("namespace") or "", m["name"])
        with self.cond:
            bucket = self._data.setdefault(skey, {})
            old = bucket.get(key)
            bucket[key] = obj
            self._by_ns.setdefault(skey, {}).setdefault(key[0], {})[key] = obj
            if old is None:
                self._key_added(skey, key)
            self._owners_changed(skey, key, old, obj)
            self._log(Event(int(m["resourceVersion"]), skey, etype, obj, prev))

    def delete(self, skey: StorageKey, obj: JSONDict, rv: int) -> None:
        m = obj["metadata"]
        key = (m.get("namespace") or "", m["name"])
        with self.cond:
            prev = self._data.get(skey, {}).pop(key, None)
            if prev is not None:
                namespace = self._by_ns.get(skey, {}).get(key[0], {})
                namespace.pop(key, None)
                if not namespace:
                    self._by_ns[skey].pop(key[0], None)
                self._key_removed(skey, key)
                self._owners_changed(skey, key, prev, None)
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


def _owner_uids(obj: JSONDict | None) -> frozenset[str]:
    if obj is None:
        return frozenset()
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return frozenset(
        str(r["uid"]) for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)
    )

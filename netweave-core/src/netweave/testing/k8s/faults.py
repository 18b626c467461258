"""Faults injected on demand: latency, hangs, error statuses, throttling, dropped watches.

Each fault is scoped by HTTP method (one, ``"*"``, or a set such as :data:`WRITE_METHODS`)
and path pattern (a glob such as ``/api/v1/namespaces/*/secrets*`` or a compiled regular
expression) and fires at most ``times`` times (``None`` = until removed).
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field

#: The verbs that change something: a fault on every write (a webhook refusing every change, an
#: API server dying mid-request) is scoped with these.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A method scope: one verb, ``"*"`` for any, or a set of verbs.
Methods = str | frozenset[str]


@dataclass
class Fault:
    """One injected fault; ``hits`` counts the requests it affected."""

    kind: str  # "error", "latency", "hang", "drop_watch", "reset"
    path: str | re.Pattern[str] = "*"
    method: Methods = "*"
    times: int | None = None
    status: int = 500
    message: str = "injected fault"
    retry_after: int | None = None
    latency: float = 0.0
    after_events: int = 0
    watch_only: bool = False
    hits: int = 0
    #: Set when the fault is removed: releases the requests a "hang" holds.
    released: threading.Event = field(default_factory=threading.Event, repr=False)
    _owner: FaultInjector | None = field(default=None, repr=False)

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        if isinstance(self.method, frozenset):
            if method.upper() not in self.method:
                return False
        elif self.method != "*" and self.method.upper() != method.upper():
            return False
        if self.watch_only and not is_watch:
            return False
        if isinstance(self.path, re.Pattern):
            return self.path.search(path) is not None
        return fnmatch.fnmatchcase(path, self.path)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def remove(self) -> None:
        if self._owner is not None:
            self._owner.remove(self)


class FaultInjector:
    """The emulator's fault table (``emulator.faults``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def _add(self, fault: Fault) -> Fault:
        fault._owner = self
        with self._lock:
            self._faults.append(fault)
        return fault

    def error(
        self,
        status: int = 500,
        *,
        path: str | re.Pattern[str] = "*",
        method: Methods = "*",
        times: int | None = 1,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer matching requests with ``status`` (a ``Status`` body)."""
        return self._add(
            Fault(
                "error",
                path,
                method,
                times,
                status=status,
                message=message or f"injected fault: HTTP {status}",
                retry_after=retry_after,
            )
        )

    def throttle(
        self,
        retry_after: int = 1,
        *,
        path: str | re.Pattern[str] = "*",
        method: Methods = "*",
        times: int | None = 1,
    ) -> Fault:
        """429 TooManyRequests with a ``Retry-After`` header, like API priority and fairness."""
        return self._add(
            Fault(
                "error",
                path,
                method,
                times,
                status=429,
                message="Too many requests, please try again later.",
                retry_after=retry_after,
            )
        )

    def latency(
        self,
        seconds: float,
        *,
        path: str | re.Pattern[str] = "*",
        method: Methods = "*",
        times: int | None = None,
    ) -> Fault:
        """Delay matching requests by ``seconds`` before they are served."""
        return self._add(Fault("latency", path, method, times, latency=seconds))

    def hang(
        self,
        *,
        path: str | re.Pattern[str] = "*",
        method: Methods = "*",
        times: int | None = None,
        seconds: float = 600.0,
    ) -> Fault:
        """Hold matching requests unanswered until the fault is removed (or the emulator stops),
        at most ``seconds``; then they are served normally: a backend call that never returns."""
        return self._add(Fault("hang", path, method, times, latency=seconds))

    def drop_watch(
        self,
        *,
        path: str | re.Pattern[str] = "*",
        after_events: int = 0,
        times: int | None = 1,
    ) -> Fault:
        """Close matching watch connections abruptly after ``after_events`` events."""
        return self._add(
            Fault("drop_watch", path, "GET", times, after_events=after_events, watch_only=True)
        )

    def reset(
        self,
        *,
        path: str | re.Pattern[str] = "*",
        method: Methods = "*",
        times: int | None = 1,
    ) -> Fault:
        """Close the connection without answering (a connection reset for the client)."""
        return self._add(Fault("reset", path, method, times))

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)
        fault.released.set()

    def clear(self) -> None:
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            fault.released.set()

    def all(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str, is_watch: bool) -> list[Fault]:
        """The faults that apply to one request (their hit counts are consumed)."""
        out: list[Fault] = []
        with self._lock:
            for f in self._faults:
                if f.exhausted or not f.matches(method, path, is_watch):
                    continue
                f.hits += 1
                out.append(f)
        return out

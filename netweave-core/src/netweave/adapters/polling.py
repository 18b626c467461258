"""Waiting for a backend to reach a state: one rule for every adapter.

A backend that works asynchronously (an OSM operation, an ONAP instance, a Flux reconcile)
is read again and again until it is done. Every adapter stops the same way at the deadline:
:class:`~netweave.errors.BackendTimeout` naming what was awaited and the last state seen, so the
operation runner reports a 504 the same way whichever backend it was.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from netweave.errors import BackendTimeout

_T = TypeVar("_T")


async def poll_until(
    fetch: Callable[[], Awaitable[_T]],
    done: Callable[[_T], bool],
    *,
    within: float,
    interval: float,
    what: str,
    describe: Callable[[_T], str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> _T:
    """Call ``fetch`` until ``done(result)``, sleeping ``interval`` between calls, and return
    that result. The first call happens at once. When ``within`` seconds have passed without
    it, raise ``BackendTimeout``: "<what> did not happen within <within> s" followed by
    ``describe(last result)`` when given. Bounded: at most ``within / interval + 2`` calls."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    deadline = time.monotonic() + within
    result = await fetch()
    for _ in range(int(within / interval) + 2):
        if done(result):
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await asyncio.sleep(min(interval, remaining))
        result = await fetch()
    if done(result):
        return result
    message = f"{what} did not happen within {within:g} s"
    if describe is not None:
        message += f" ({describe(result)})"
    raise BackendTimeout(message, details=dict(details or {}))


__all__ = ["poll_until"]

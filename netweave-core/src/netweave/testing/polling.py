"""Waiting in a test for something that happens in the background (a watch report, a
reconcile round, a worker started), bounded so a test that waits for what never comes fails."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(
    predicate: Callable[[], object | Awaitable[object]],
    within: float = 10.0,
    *,
    what: str = "the condition",
    every: float = 0.05,
) -> None:
    """Return once ``predicate()`` (awaited when it gives an awaitable) is true, checking every
    ``every`` seconds; fail the test (``AssertionError``) after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"{what} never held within {within} s")
        await asyncio.sleep(every)


__all__ = ["until"]

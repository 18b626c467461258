"""Waiting on an event with a deadline, in a way a cancellation always gets through."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """True when ``event`` is set within ``seconds``, False when the time runs out.

    Not ``asyncio.wait_for``: on Python 3.11 a cancellation arriving as its timeout fires can
    come out as ``TimeoutError``, which a loop that suppresses timeouts then swallows — a
    background task that ignores its cancellation and a shutdown that waits for it forever
    (seen as a hung test teardown). ``asyncio.timeout`` tells its own expiry from a
    cancellation.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


__all__ = ["wait_event"]

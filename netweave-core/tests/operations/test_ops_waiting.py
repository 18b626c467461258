"""netweave.waiting.wait_event: the background loops' wait (operation worker, reconciler,
notification delivery, operation follow) must let a cancellation through.

With ``asyncio.wait_for`` on Python 3.11, a cancellation arriving in the same loop iteration as
the event being set is swallowed (wait_for returns the event's result): a loop that clears its
event and waits again then runs on after ``cancel()``, and a shutdown gathering it hangs — seen
as a test teardown hung for minutes while a Kubernetes watch woke the reconciler."""

from __future__ import annotations

import asyncio
import contextlib

from netweave.waiting import wait_event


async def _loop(event: asyncio.Event) -> None:
    while True:  # as the background loops do: clear, then wait for a wake-up or the interval
        event.clear()
        await wait_event(event, 5.0)


async def test_a_cancellation_arriving_with_the_wake_up_ends_the_loop() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_loop(event))
    for _ in range(3):
        await asyncio.sleep(0)  # the loop is waiting
    event.set()
    task.cancel()  # the same iteration as the wake-up
    done, _ = await asyncio.wait({task}, timeout=2.0)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 1.0)
    assert done, "the cancellation was swallowed: the loop ran on"
    assert task.cancelled()


async def test_set_within_the_time_is_true_and_expiry_is_false() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5.0) is True

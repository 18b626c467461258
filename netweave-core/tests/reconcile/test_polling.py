"""The polling path's back-off: a backend that does not answer is read less and less often,
never more often than a healthy one."""

from __future__ import annotations

from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.operations.events import HookBus
from netweave.reconcile import Reconciler
from netweave.store.sql import create_store


def test_back_off_doubles_up_to_the_cap_and_never_polls_faster_than_the_interval() -> None:
    reconciler = Reconciler(
        create_store("sqlite://"),
        AdapterRegistry({}),
        HookBus(make_plugin_manager()),
        owner="r",
        interval=2.0,
        max_interval=10.0,
    )
    polled = [reconciler.backoff(n, watched=False) for n in range(1, 6)]
    assert polled == [2.0, 4.0, 8.0, 10.0, 10.0]
    # A cap below the interval would shorten the poll: the interval wins for polled ones.
    reconciler.max_interval = 1.0
    assert reconciler.backoff(3, watched=False) == 2.0
    # A watched deployment is retried at the back-off, not at its (long) resync.
    assert reconciler.backoff(3, watched=True) == 1.0

"""The polling path's back-off: a backend that does not answer is read less and less often,
never more often than a healthy one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from netweave.adapters import BackendChanges
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.errors import ClusterNotConfigured
from netweave.operations.events import HookBus
from netweave.reconcile import Reconciler
from netweave.store.sql import create_store
from support.memory_adapter import MemoryAdapter


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


class _Unconfigured(MemoryAdapter):
    """Declares a watch and fails it as a Helm adapter without a cluster does."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.watches_started = 0

    async def watch_deployments(self) -> AsyncIterator[BackendChanges]:
        self.watches_started += 1
        raise ClusterNotConfigured(
            f"adapter {self.name!r} has no Kubernetes cluster: configure one"
        )
        yield BackendChanges()  # pragma: no cover - an async generator that never yields


async def test_a_watch_failing_for_a_known_reason_logs_it_without_a_traceback_and_backs_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = _Unconfigured("helm-local")
    reconciler = Reconciler(
        create_store("sqlite://"),
        AdapterRegistry({"helm-local": adapter}),
        HookBus(make_plugin_manager()),
        owner="r",
    )
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= 4:
            raise asyncio.CancelledError  # enough restarts seen: end the watch loop
        await real_sleep(0)

    monkeypatch.setattr("netweave.reconcile.reconciler.asyncio.sleep", sleep)
    with (
        caplog.at_level(logging.WARNING, logger="netweave.reconcile"),
        pytest.raises(asyncio.CancelledError),
    ):
        await reconciler._watch("helm-local", adapter)
    assert adapter.watches_started == 4
    assert slept == [1.0, 2.0, 4.0, 8.0]  # doubling back-off between restarts
    warnings = [r for r in caplog.records if "watch of helm-local failed" in r.getMessage()]
    assert len(warnings) == 4
    assert all(r.exc_info is None for r in warnings)  # the message, not a traceback
    assert "has no Kubernetes cluster" in warnings[0].getMessage()

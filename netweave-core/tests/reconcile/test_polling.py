"""The polling path's back-off: a backend that does not answer is read less and less often,
never more often than a healthy one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from netweave.adapters import BackendChanges
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.errors import ClusterNotConfigured
from netweave.models import DeploymentStatus
from netweave.operations.events import HookBus
from netweave.reconcile import Reconciler
from netweave.store import DeploymentRecord
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


async def test_a_listing_pages_through_references_and_lets_requests_run_between_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over more deployments than one page: every deployment with a backend is tracked, one
    without is not, a deleted one is dropped at the next listing; pages are read as references
    only, and the event loop runs other work between them (a listing never holds it for all
    deployments at once)."""
    monkeypatch.setattr("netweave.reconcile.reconciler.MAX_PAGE_LIMIT", 7)
    store = create_store(f"sqlite:///{tmp_path / 'nw.db'}")
    await store.migrate()
    now = datetime.now(UTC)
    async with store.transaction():
        for n in range(30):
            await store.add_deployment(
                DeploymentRecord(
                    deployment_id=f"d-{n:03d}", name=f"n{n}", namespace="default",
                    package_id="p", package_version="1", adapter="mem",
                    status=DeploymentStatus.DEPLOYED, created_at=now, updated_at=now,
                    backend_ref=None if n == 5 else f"default/n{n}",
                )
            )  # fmt: skip
    reconciler = Reconciler(
        store,
        AdapterRegistry({"mem": MemoryAdapter("mem")}),
        HookBus(make_plugin_manager()),
        owner="r",
    )
    reconciler.held = set(range(reconciler.shards))
    pages: list[int] = []
    real_refs = store.deployment_refs

    async def refs(*, after: str | None, limit: int) -> list[tuple[str, str, str | None]]:
        page = await real_refs(after=after, limit=limit)
        pages.append(len(page))
        return page

    monkeypatch.setattr(store, "deployment_refs", refs)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    beside = asyncio.create_task(ticker())
    try:
        assert await reconciler.refresh() == 29
        assert pages == [7, 7, 7, 7, 2]
        assert ticks >= 4  # the loop ran between the pages
        assert "d-005" not in reconciler._tracked
        assert reconciler._by_ref[("mem", "default/n12")] == "d-012"
        await store.delete_deployment("d-012")
        assert await reconciler.refresh() == 28
        assert "d-012" not in reconciler._tracked
        assert ("mem", "default/n12") not in reconciler._by_ref
    finally:
        beside.cancel()
        await store.close()

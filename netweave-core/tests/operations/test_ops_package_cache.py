"""The package read cache: concurrent misses run one query; a write during it is not hidden."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.models import PackageState
from netweave.operations.cache import ReadCache
from netweave.operations.events import HookBus
from netweave.operations.metrics import Metrics
from netweave.services.packages import PackageService
from netweave.store import PackageRecord
from netweave.store.sql import SqlStore, create_store
from prometheus_client import CollectorRegistry
from support.memory_adapter import MemoryAdapter


class CountingStore:
    """The real SQLite store, counting list reads (``package_views``) and able to hold them."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.list_calls = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def package_views(self, **kwargs: Any) -> tuple[list[Any], bool]:
        self.list_calls += 1
        page = await self.inner.package_views(**kwargs)  # read before the gate, as a slow query
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def record(name: str) -> PackageRecord:
    stamp = datetime.now(UTC)
    return PackageRecord(
        package_id=f"{name}-1.0.0",
        name=name,
        version="1.0.0",
        artifact_name=name,
        package_type="helm",
        state=PackageState.AVAILABLE,
        adapter="mem",
        backend_ref=f"{name}:1.0.0",
        created_at=stamp,
        updated_at=stamp,
    )


Fixture = tuple[PackageService, CountingStore, MemoryAdapter]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Fixture]:
    inner = create_store(f"sqlite:///{tmp_path / 'netweave.db'}")
    assert isinstance(inner, SqlStore)
    await inner.migrate()
    for name in ("alpha", "beta"):
        await inner.add_package(record(name))
    adapter = MemoryAdapter("mem")
    await adapter.start()
    store = CountingStore(inner)
    packages = PackageService(
        store,  # type: ignore[arg-type]
        AdapterRegistry({"mem": adapter}),
        HookBus(make_plugin_manager()),
        Metrics(CollectorRegistry()),
        cache_ttl=60.0,
    )
    try:
        yield packages, store, adapter
    finally:
        await packages.close()
        await adapter.stop()
        await inner.close()


def names(body: bytes) -> list[str]:
    return [item["name"] for item in json.loads(body)["items"]]


async def test_concurrent_misses_run_the_query_once(
    service: Fixture,
) -> None:
    packages, store, adapter = service
    store.gate = asyncio.Event()
    readers = [asyncio.create_task(packages.query_json(package_type="helm")) for _ in range(20)]
    await asyncio.wait_for(store.entered.wait(), 5)
    await asyncio.sleep(0.01)  # let every reader reach the cache
    store.gate.set()
    bodies = await asyncio.gather(*readers)
    assert {names(b) == ["alpha", "beta"] for b in bodies} == {True}
    assert store.list_calls == 1
    assert len(adapter.calls_to("list_packages")) == 1
    await packages.query_json(package_type="helm")  # now a hit
    assert store.list_calls == 1


async def test_a_cancelled_first_caller_does_not_cancel_the_others(
    service: Fixture,
) -> None:
    packages, store, _ = service
    store.gate = asyncio.Event()
    first = asyncio.create_task(packages.query_json())
    await asyncio.wait_for(store.entered.wait(), 5)
    second = asyncio.create_task(packages.query_json())
    await asyncio.sleep(0.01)
    first.cancel()
    store.gate.set()
    assert names(await second) == ["alpha", "beta"]
    assert first.cancelled()
    assert store.list_calls == 1


async def test_an_invalidation_during_the_query_is_not_hidden(
    service: Fixture,
) -> None:
    packages, store, _ = service
    held = store.gate = asyncio.Event()
    early = asyncio.create_task(packages.query_json())
    await asyncio.wait_for(store.entered.wait(), 5)  # its page is read: alpha, beta
    await store.inner.add_package(record("gamma"))  # a write through this process ...
    packages.cache.invalidate()  # ... clears the cache, as the services do
    store.gate = None
    # a reader after the write does not join the older flight: it queries again
    assert names(await packages.query_json()) == ["alpha", "beta", "gamma"]
    assert store.list_calls == 2
    held.set()
    assert names(await early) == ["alpha", "beta"]  # began before the write
    # and the older answer, landing last, was not cached over the newer one
    assert names(await packages.query_json()) == ["alpha", "beta", "gamma"]
    assert store.list_calls == 2


async def test_an_error_reaches_every_waiter_and_is_not_cached() -> None:
    cache = ReadCache(60.0)
    calls = 0
    gate = asyncio.Event()

    async def failing() -> bytes:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise RuntimeError("backend down")

    waiters = [asyncio.create_task(cache.get_or_compute("k", failing)) for _ in range(5)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert calls == 1

    async def working() -> bytes:
        return b"ok"

    assert await cache.get_or_compute("k", working) == b"ok"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_just_expired_entry_is_served_while_one_refresh_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("netweave.operations.cache.monotonic", clock)
    cache = ReadCache(1.0)
    version = 0
    gate = asyncio.Event()

    async def compute() -> bytes:
        nonlocal version
        version += 1
        if version > 1:
            await gate.wait()
        return f"v{version}".encode()

    assert await cache.get_or_compute("k", compute) == b"v1"
    clock.now += 1.5  # expired, within the grace of one more ttl
    answers = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(10)))
    assert set(answers) == {b"v1"}  # nobody waited for the refresh ...
    assert version == 2  # ... and only one was started
    gate.set()
    await asyncio.sleep(0.01)
    assert await cache.get_or_compute("k", compute) == b"v2"
    clock.now += 2.5  # past the grace: the old answer is not served, the reader waits
    assert await cache.get_or_compute("k", compute) == b"v3"


async def test_an_invalidation_drops_just_expired_entries_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr("netweave.operations.cache.monotonic", clock)
    cache = ReadCache(1.0)
    answer = b"before"

    async def compute() -> bytes:
        return answer

    assert await cache.get_or_compute("k", compute) == b"before"
    clock.now += 1.5
    answer = b"after"
    cache.invalidate()  # a write through this process
    assert await cache.get_or_compute("k", compute) == b"after"

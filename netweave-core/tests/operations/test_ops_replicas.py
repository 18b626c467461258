"""Two gateway replicas on one PostgreSQL database (the setup docs/replicas.md describes): each
operation runs once; caches converge."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter
from support.postgres import temporary_database

BASE = "/o2dms/v1/nfDeployments"


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLite serves one process only)."""
    with temporary_database("nw_replicas") as created:
        assert created is not None  # unreachable: required, so the test skips or fails
        yield created


@asynccontextmanager
async def two_replicas(
    tmp_path: Path, backend: MemoryAdapter, url: str
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateways, each with its own data directory, on one database."""
    async with (
        running_gateway(
            tmp_path / "a",
            adapters=[backend],
            store_url=url,
            settings=make_settings(tmp_path / "a" / "data"),
        ) as first,
        running_gateway(
            tmp_path / "b",
            adapters=[backend],
            store_url=url,
            settings=make_settings(tmp_path / "b" / "data"),
        ) as second,
    ):
        yield first, second


async def test_each_operation_runs_in_one_replica(tmp_path: Path, url: str) -> None:
    backend = MemoryAdapter("mem")  # one backend, reached from both replicas
    backend.delay["create_deployment"] = 0.05
    async with two_replicas(tmp_path, backend, url) as (first, second):
        await first.register_package("app", "1.0.0")
        created = []
        for n in range(8):
            gateway = first if n % 2 else second
            response = await gateway.post(BASE, json={"name": f"web-{n}", "packageId": "app-1.0.0"})
            assert response.status_code == 201, response.text
            created.append(response.headers["link"].split("/operations/")[1].split(">")[0])
        results = await asyncio.gather(*(first.wait_operation(op) for op in created))
        assert [r["state"] for r in results] == ["COMPLETED"] * 8
        calls = Counter(ref for hook, ref, _ in backend.calls if hook == "create_deployment")
        assert len(calls) == 8
        assert set(calls.values()) == {1}, calls


async def test_another_replicas_change_is_seen_within_the_cache_ttl(
    tmp_path: Path, url: str
) -> None:
    backend = MemoryAdapter("mem")
    async with two_replicas(tmp_path, backend, url) as (first, second):
        await first.register_package("app", "1.0.0")
        package_url = "/o2dms/v1/nfDeploymentDescriptors/app-1.0.0"
        assert (await second.get(package_url)).json()["state"] == "AVAILABLE"  # now cached
        await first.patch(package_url, json={"state": "DEPRECATED"})
        # the replica that changed it answers the truth at once
        assert (await first.get(package_url)).json()["state"] == "DEPRECATED"
        ttl = second.app.state.services.packages.cache.ttl
        seen = None
        for _ in range(int(ttl / 0.05) + 40):
            seen = (await second.get(package_url)).json()["state"]
            if seen == "DEPRECATED":
                break
            await asyncio.sleep(0.05)
        assert seen == "DEPRECATED"

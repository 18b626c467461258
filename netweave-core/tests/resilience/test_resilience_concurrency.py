"""R3: concurrent duplicates — 50 uploads of one name+version give exactly one 201 and 49
409 problems; 50 creates of one deployment name in one namespace give exactly one 201 — on
SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from support.gateway import running_gateway
from support.memory_adapter import MemoryAdapter
from support.problems import assert_problem

CONCURRENT = 50


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'netweave.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_concurrent_uploads_of_one_version_one_wins(tmp_path: Path, store_url: str) -> None:
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], store_url=store_url
    ) as gw:

        async def upload(n: int) -> object:
            return await gw.post(
                "/o2dms/v1/nfDeploymentDescriptors",
                data={"name": "app", "artifactVersion": "1.0.0"},
                files={"chart": (f"app-{n}.tgz", b"chart-bytes-%d" % n, "application/gzip")},
            )

        responses = await asyncio.gather(*(upload(n) for n in range(CONCURRENT)))
        statuses = Counter(r.status_code for r in responses)  # type: ignore[attr-defined]
        assert statuses == {201: 1, 409: CONCURRENT - 1}, statuses
        for response in responses:
            if response.status_code == 409:  # type: ignore[attr-defined]
                assert_problem(response, 409)
        listed = (await gw.get("/o2dms/v1/nfDeploymentDescriptors", params={"name": "app"})).json()
        assert listed["total"] == 1
        print(f"\nR3 uploads ({store_url.split(':')[0]}): {dict(statuses)}")


async def test_concurrent_creates_of_one_deployment_name_one_wins(
    tmp_path: Path, store_url: str
) -> None:
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("mem")], store_url=store_url
    ) as gw:
        await gw.register_package("app", "1.0.0")

        async def create() -> object:
            return await gw.post(
                "/o2dms/v1/nfDeployments",
                json={"name": "web", "namespace": "prod", "packageId": "app-1.0.0"},
            )

        responses = await asyncio.gather(*(create() for _ in range(CONCURRENT)))
        statuses = Counter(r.status_code for r in responses)  # type: ignore[attr-defined]
        assert statuses == {201: 1, 409: CONCURRENT - 1}, statuses
        for response in responses:
            if response.status_code == 409:  # type: ignore[attr-defined]
                assert_problem(response, 409)
        listed = (await gw.get("/o2dms/v1/nfDeployments", params={"namespace": "prod"})).json()
        assert listed["total"] == 1
        assert len(gw.memory.calls_to("create_deployment")) <= 1
        print(f"\nR3 creates ({store_url.split(':')[0]}): {dict(statuses)}")

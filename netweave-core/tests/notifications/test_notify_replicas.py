"""Two gateway replicas on one PostgreSQL database deliver each event once, in order per
package, to a subscriber on 127.0.0.1 that refuses every first attempt."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from netweave.config import NotificationSettings, Settings
from netweave.testing import require_backend
from notify_support import Subscriber, subscriber_server
from sqlalchemy.engine import make_url
from support.gateway import POSTGRES_URL, make_settings, running_gateway


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"nw_notify_{secrets.token_hex(5)}"
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        require_backend(f"PostgreSQL not reachable at {POSTGRES_URL}")
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def replica_settings(tmp_path: Path, name: str) -> Settings:
    settings = make_settings(tmp_path / name)
    settings.notifications = NotificationSettings(
        allowed_cidrs=["127.0.0.0/8"],
        poll_interval=0.02,
        settle_seconds=0.05,
        backoff_base=0.02,
        backoff_max=0.1,
        timeout=5.0,
    )
    return settings


async def test_two_replicas_deliver_each_event_once_in_order(tmp_path: Path, pg_url: str) -> None:
    subscriber = Subscriber(fail_first=1)
    async with (
        subscriber_server(subscriber) as url,
        running_gateway(
            tmp_path / "a", store_url=pg_url, settings=replica_settings(tmp_path, "a")
        ) as a,
        running_gateway(
            tmp_path / "b", store_url=pg_url, settings=replica_settings(tmp_path, "b")
        ) as b,
    ):
        created = await a.post("/o2dms/v1/subscriptions", json={"callbackUri": f"{url}/cb"})
        assert created.status_code == 201, created.text
        expected: dict[str, list[str]] = {}
        for n in range(8):
            replica = a if n % 2 == 0 else b
            package = await replica.register_package(name=f"app{n}")
            package_id = package["packageId"]
            for state in ("DEPRECATED", "AVAILABLE"):
                changed = await replica.patch(
                    f"/o2dms/v1/nfDeploymentDescriptors/{package_id}", json={"state": state}
                )
                assert changed.status_code == 200, changed.text
            expected[package_id] = ["PackageUploaded:AVAILABLE", "PackageChanged:DEPRECATED"]
            expected[package_id].append("PackageChanged:AVAILABLE")
        total = sum(len(v) for v in expected.values())
        for _ in range(600):  # up to 30 s
            if len(subscriber.unique_accepted()) >= total:
                break
            await asyncio.sleep(0.05)
    unique = subscriber.unique_accepted()
    assert len(unique) == total
    # Each accepted exactly once (no lease expired), each after one refusal.
    assert len(subscriber.accepted()) == total
    assert all(n == 2 for n in subscriber.attempts.values())
    for package_id, story in expected.items():
        got = [
            f"{b['notificationType']}:{b['data']['state']}"
            for b in unique
            if b.get("packageId") == package_id
        ]
        assert got == story, package_id

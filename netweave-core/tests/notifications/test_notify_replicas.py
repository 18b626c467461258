"""Two gateway replicas on one PostgreSQL database deliver each event once, in order per
package, to a subscriber on 127.0.0.1 that refuses every first attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from netweave.config import NotificationSettings, Settings
from notify_support import Subscriber, subscriber_server
from support.gateway import make_settings, running_gateway
from support.postgres import temporary_database


@pytest.fixture
def pg_url() -> Iterator[str | None]:
    with temporary_database("nw_notify") as url:
        yield url


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

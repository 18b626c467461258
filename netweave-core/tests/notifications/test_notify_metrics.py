"""Delivery metrics on ``/metrics``: delivered, retried and given-up notifications, latency and
the outbox's pending deliveries, against subscribers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from netweave.config import NotificationSettings
from notify_support import Subscriber, subscriber_server
from prometheus_client.parser import text_string_to_metric_families
from support.gateway import Gateway, make_settings, running_gateway

SUBSCRIPTIONS = "/o2dms/v1/subscriptions"


async def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await gw.client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_deliveries_retries_failures_and_pending(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    settings.notifications = NotificationSettings(
        allowed_cidrs=["127.0.0.0/8"],
        poll_interval=0.02,
        settle_seconds=1.0,  # deliveries wait a second in the outbox: the gauge sees them
        backoff_base=0.02,
        backoff_max=0.05,
        max_attempts=3,
        timeout=5.0,
    )
    good = Subscriber(fail_first=1)  # every event: one 500, then 204
    bad = Subscriber(fail_first=1000)  # never accepts
    async with (
        subscriber_server(good) as good_url,
        subscriber_server(bad) as bad_url,
        running_gateway(tmp_path, settings=settings) as gw,
    ):
        for url in (good_url, bad_url):
            created = await gw.post(SUBSCRIPTIONS, json={"callbackUri": f"{url}/cb"})
            assert created.status_code == 201, created.text
        before = await scrape(gw)
        assert value(before, "o2dms_notifications_pending") == 0
        package = await gw.register_package()
        assert value(await scrape(gw), "o2dms_notifications_pending") == 2  # 1 event x 2 subs
        changed = await gw.patch(
            f"/o2dms/v1/nfDeploymentDescriptors/{package['packageId']}",
            json={"state": "DEPRECATED"},
        )
        assert changed.status_code == 200, changed.text
        # Two events, two subscriptions: four deliveries, pending until handled.
        for _ in range(400):  # up to 20 s
            samples = await scrape(gw)
            if (
                len(good.unique_accepted()) == 2
                and value(samples, "o2dms_notifications_failed_total", reason="http_status") == 2
            ):
                break
            await asyncio.sleep(0.05)
        samples = await scrape(gw)

    assert value(samples, "o2dms_notifications_delivered_total", event_type="PackageUploaded") == 1
    assert value(samples, "o2dms_notifications_delivered_total", event_type="PackageChanged") == 1
    # Given up: the bad subscriber's two deliveries after maxAttempts (3) refusals each.
    assert value(samples, "o2dms_notifications_failed_total", reason="http_status") == 2
    assert len(bad.receipts) == 6
    # Retried: good's first refusal of each event, bad's first two refusals of each.
    assert value(samples, "o2dms_notification_retries_total", reason="http_status") == 2 + 4
    assert value(samples, "o2dms_notification_delivery_latency_seconds_count") == 2
    latency_sum = value(samples, "o2dms_notification_delivery_latency_seconds_sum")
    assert 0 < latency_sum < 20
    assert value(samples, "o2dms_notifications_pending") == 0

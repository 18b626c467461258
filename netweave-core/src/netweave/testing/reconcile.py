"""Helpers for tests of live health and drift through the HTTP API: a gateway whose reconciler
polls fast, a subscriber on loopback (:class:`netweave.testing.etsi_notify.CallbackSink`), and
bounded waits on what the gateway records.

Each adapter's health tests change its backend's emulator behind the gateway's back and check
the recorded status/drift, the events a subscriber receives, and what the backend holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from netweave.config import ReconcileSettings, Settings
from netweave.models.paths import API_PREFIX
from netweave.testing.etsi_notify import CallbackSink
from netweave.testing.gateway import GatewayClient

DEPLOYMENTS = f"{API_PREFIX}/nfDeployments"
HEALTH_EVENTS = ("DeploymentHealthChanged", "DeploymentDriftDetected")


def fast_polling(settings: Settings, *, interval: float = 0.3, max_interval: float = 1.2) -> None:
    """The reconciler on, polling every ``interval`` s (back-off up to ``max_interval``), and
    notifications delivered at once to loopback subscribers."""
    settings.reconcile = ReconcileSettings(
        interval=interval,
        max_interval=max_interval,
        resync=30.0,
        lease_seconds=5.0,
        list_interval=interval,
    )
    settings.notifications.allow_private_callbacks = True
    settings.notifications.poll_interval = 0.05
    settings.notifications.settle_seconds = 0.0


async def subscribe(gw: GatewayClient, sink: CallbackSink) -> str:
    """A subscription to the health and drift events, delivered to ``sink``."""
    response = await gw.post(
        f"{API_PREFIX}/subscriptions",
        json={"callbackUri": sink.url, "filter": {"eventTypes": list(HEALTH_EVENTS)}},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["subscriptionId"])


async def stored(gw: GatewayClient, deployment_id: str) -> dict[str, Any]:
    """The deployment as recorded: the list answers from the store, without reading the
    backend (a read of one deployment would itself observe it)."""
    response = await gw.get(DEPLOYMENTS)
    assert response.status_code == 200, response.text
    found = [d for d in response.json()["items"] if d["deploymentId"] == deployment_id]
    assert found, response.json()
    return dict(found[0])


async def recorded_until(
    gw: GatewayClient,
    deployment_id: str,
    check: Callable[[dict[str, Any]], bool],
    within: float = 20.0,
) -> dict[str, Any]:
    """The recorded deployment once ``check`` holds for it (bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: dict[str, Any] = {}
    while loop.time() < deadline:
        last = await stored(gw, deployment_id)
        if check(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"the record never matched: {last}")


def events(sink: CallbackSink, event_type: str, deployment_id: str) -> list[dict[str, Any]]:
    """The de-duplicated ``event_type`` notifications about ``deployment_id``, oldest first."""
    return [
        body
        for body in sink.unique()
        if body.get("notificationType") == event_type and body.get("deploymentId") == deployment_id
    ]


async def notified(
    sink: CallbackSink,
    event_type: str,
    deployment_id: str,
    check: Callable[[dict[str, Any]], bool] = lambda _: True,
    within: float = 20.0,
) -> dict[str, Any]:
    """The first ``event_type`` notification about ``deployment_id`` that ``check`` accepts."""
    bodies = await sink.wait_for(
        lambda _: any(check(b) for b in events(sink, event_type, deployment_id)), within
    )
    del bodies
    return next(b for b in events(sink, event_type, deployment_id) if check(b))


__all__ = [
    "DEPLOYMENTS",
    "HEALTH_EVENTS",
    "events",
    "fast_polling",
    "notified",
    "recorded_until",
    "stored",
    "subscribe",
]

"""The delivery worker: claims due deliveries from the outbox and POSTs them to callbacks.

At least once: a delivery is marked DELIVERED only after the callback answered 2xx; a failure
(non-2xx, transport error, token endpoint failure, refused address) is retried with exponential
back-off (``backoffBase · 2^(attempt-1)``, capped at ``backoffMax``, ±10 % jitter so replicas do
not retry in lock-step) up to ``maxAttempts``, then marked FAILED and logged. Several replicas
run this worker on one database; the claim (see :mod:`netweave.store.outbox`) gives each
delivery to one of them and keeps a subscription's events about one deployment in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from netweave.config import NotificationSettings
from netweave.models.paths import API_PREFIX
from netweave.notifications.callbacks import CallbackAuthError, CallbackClient
from netweave.notifications.events import notification_body
from netweave.notifications.sealing import SecretSealer, SecretUnavailable
from netweave.notifications.ssrf import CallbackRefused
from netweave.store import Store
from netweave.store.outbox import Delivery, OutboxStore
from netweave.waiting import wait_event

if TYPE_CHECKING:  # netweave.operations imports this package: no runtime import back
    from netweave.operations.metrics import Metrics

_log = logging.getLogger("netweave.notifications")

#: Finished deliveries and events are kept this long (inspection), then purged.
RETENTION = timedelta(days=7)
_PURGE_EVERY = 3600.0


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    """Where and what one delivery sends."""

    callback_uri: str
    #: The subscription's authentication record as stored (secrets sealed).
    authentication: Mapping[str, Any] | None
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class DeliveryChannel(Protocol):
    """Subscriptions kept apart from the native ones (the ETSI face's): for the event types it
    names, the channel finds the subscription and shapes the body. Same outbox, same retries."""

    event_types: frozenset[str]

    async def target(self, delivery: Delivery) -> CallbackTarget | None:
        """``None``: the subscription is gone."""


class DeliveryWorker:
    def __init__(
        self,
        outbox: OutboxStore,
        store: Store,
        client: CallbackClient,
        settings: NotificationSettings,
        *,
        api_prefix: str = API_PREFIX,
        owner: str | None = None,
        metrics: Metrics | None = None,
        sealer: SecretSealer | None = None,
    ) -> None:
        self._metrics = metrics
        #: Decrypts the subscriptions' stored callback secrets (None: stored in clear).
        self._sealer = sealer
        self._outbox = outbox
        self._store = store
        self._client = client
        self._settings = settings
        self._api_prefix = api_prefix
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # A delivery may take a token fetch plus the POST: the lease must outlast both, or
        # another replica would send the same event while this one still waits.
        self._lease = max(settings.lease_seconds, 3 * settings.timeout)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_purge = 0.0
        self._channels: dict[str, DeliveryChannel] = {}

    def add_channel(self, channel: DeliveryChannel) -> None:
        for event_type in channel.event_types:
            self._channels[event_type] = channel

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="netweave-notifications")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self._settings.timeout + 5)
            except TimeoutError:
                self._task.cancel()
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                handled = await self.run_once()
                await self._maybe_purge()
            except Exception:
                # The database may be briefly away; the loop must outlive that.
                _log.exception("notification delivery round failed")
                handled = 0
            if handled == 0 and not self._stopping:
                self._wake.clear()
                await wait_event(self._wake, self._settings.poll_interval)

    async def run_once(self) -> int:
        """Claim one batch and deliver it (concurrently, one per ordering key); how many."""
        claimed = await self._outbox.claim(
            owner=self.owner,
            lease_seconds=self._lease,
            limit=self._settings.workers,
            now=_now(),
        )
        if claimed:
            await asyncio.gather(*(self._deliver(d) for d in claimed))
        return len(claimed)

    async def _target(self, delivery: Delivery) -> CallbackTarget | None:
        channel = self._channels.get(delivery.event_type)
        if channel is not None:
            return await channel.target(delivery)
        subscription = await self._store.get_subscription(delivery.subscription_id)
        if subscription is None:
            return None
        body = notification_body(
            delivery.event_id, delivery.subscription_id, delivery.payload, self._api_prefix
        )
        return CallbackTarget(subscription.callback_uri, subscription.authentication, body)

    async def _deliver(self, delivery: Delivery) -> None:
        target = await self._target(delivery)
        if target is None:
            await self._outbox.failed(delivery.id, error="subscription deleted", now=_now())
            self._count_failed("subscription_deleted")
            return
        started = time.monotonic()
        error: str | None = None
        reason = ""
        try:
            authentication = target.authentication
            if self._sealer is not None:
                authentication = self._sealer.open(authentication)
            response = await self._client.post(
                target.callback_uri,
                json.dumps(target.body, separators=(",", ":")).encode(),
                authentication,
                target.headers,
            )
            if not 200 <= response.status_code < 300:
                error = f"callback answered {response.status_code}"
                reason = "http_status"
        except CallbackRefused as exc:
            error, reason = exc.message, "refused"
        except CallbackAuthError as exc:
            error, reason = str(exc), "auth"
        except SecretUnavailable as exc:
            error, reason = str(exc), "secret_key"
        except httpx.HTTPError as exc:
            error, reason = f"{type(exc).__name__} reaching the callback", "transport"
        except Exception as exc:  # never let one delivery stop the worker
            _log.exception("delivery %s: unexpected error", delivery.id)
            error, reason = type(exc).__name__, "internal"
        if error is None:
            await self._outbox.delivered(delivery.id, now=_now())
            if self._metrics is not None:
                self._metrics.notifications_delivered.labels(event_type=delivery.event_type).inc()
                latency = (_now() - delivery.occurred_at).total_seconds()
                self._metrics.notification_latency.observe(max(0.0, latency))
            _log.debug(
                "notification %s delivered to subscription %s in %.3f s",
                delivery.event_id,
                delivery.subscription_id,
                time.monotonic() - started,
            )
            return
        if delivery.attempts >= self._settings.max_attempts:
            await self._outbox.failed(delivery.id, error=error, now=_now())
            self._count_failed(reason)
            _log.warning(
                "notification %s (%s) to subscription %s failed after %d attempts: %s",
                delivery.event_id,
                delivery.event_type,
                delivery.subscription_id,
                delivery.attempts,
                error,
            )
            return
        delay = min(
            self._settings.backoff_base * 2 ** (delivery.attempts - 1), self._settings.backoff_max
        )
        delay *= random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security
        if self._metrics is not None:
            self._metrics.notification_retries.labels(reason=reason).inc()
        await self._outbox.reschedule(
            delivery.id,
            owner=self.owner,
            next_attempt_at=_now() + timedelta(seconds=delay),
            error=error,
        )
        _log.info(
            "notification %s to subscription %s: attempt %d failed (%s); next in %.1f s",
            delivery.event_id,
            delivery.subscription_id,
            delivery.attempts,
            error,
            delay,
        )

    def _count_failed(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.notifications_failed.labels(reason=reason).inc()

    async def refresh_gauge(self) -> None:
        """Set ``o2dms_notifications_pending`` from the outbox (when ``/metrics`` is scraped)."""
        if self._metrics is not None:
            self._metrics.notifications_pending.set(await self._outbox.count_pending())

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge < _PURGE_EVERY:
            return
        self._last_purge = time.monotonic()
        await self._outbox.purge(older_than=_now() - RETENTION)


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["RETENTION", "CallbackTarget", "DeliveryChannel", "DeliveryWorker"]

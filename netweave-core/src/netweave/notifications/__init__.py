"""Subscription notifications: outbox recording, delivery, the SSRF guard and callback auth.

Part of the operations layer (knows the store, models and settings; never the API). The hook
bus records events through :class:`NotificationRecorder`; :class:`DeliveryWorker` delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netweave.config import Settings
from netweave.models.paths import API_PREFIX
from netweave.notifications.callbacks import (
    CallbackAuthError,
    CallbackClient,
    CallbackTestFailed,
    CallbackTls,
    authentication_record,
)
from netweave.notifications.delivery import DeliveryWorker
from netweave.notifications.recorder import NotificationRecorder
from netweave.notifications.sealing import SecretSealer, load_sealer
from netweave.notifications.ssrf import CallbackPolicy, CallbackRefused
from netweave.store import Store
from netweave.store.outbox import OutboxStore

if TYPE_CHECKING:  # netweave.operations imports this package: no runtime import back
    from netweave.operations.metrics import Metrics


@dataclass(slots=True)
class Notifications:
    policy: CallbackPolicy
    client: CallbackClient
    outbox: OutboxStore
    recorder: NotificationRecorder
    worker: DeliveryWorker
    #: Encrypts subscriptions' callback secrets before they are stored.
    sealer: SecretSealer

    async def close(self) -> None:
        await self.worker.stop()
        await self.client.close()


def build_notifications(
    settings: Settings, store: Store, metrics: Metrics | None = None
) -> Notifications | None:
    """Everything notifications need, or ``None`` for a store without an outbox."""
    outbox = store.outbox()
    if outbox is None:
        return None
    section = settings.notifications
    policy = CallbackPolicy(
        allow_private=section.allow_private_callbacks, allowed_cidrs=section.allowed_cidrs
    )
    tls = CallbackTls(section.client_cert_file, section.client_key_file, section.ca_file)
    client = CallbackClient(policy, timeout=section.timeout, tls=tls)
    prefix = (settings.api.public_url or "").rstrip("/") + API_PREFIX
    sealer = load_sealer(settings.data_dir)
    worker = DeliveryWorker(
        outbox, store, client, section, api_prefix=prefix, metrics=metrics, sealer=sealer
    )
    recorder = NotificationRecorder(
        store, outbox, settle_seconds=section.settle_seconds, on_recorded=worker.wake
    )
    return Notifications(policy, client, outbox, recorder, worker, sealer)


__all__ = [
    "CallbackAuthError",
    "CallbackClient",
    "CallbackPolicy",
    "CallbackRefused",
    "CallbackTestFailed",
    "DeliveryWorker",
    "NotificationRecorder",
    "Notifications",
    "SecretSealer",
    "authentication_record",
    "build_notifications",
]

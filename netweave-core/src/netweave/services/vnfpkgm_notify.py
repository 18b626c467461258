"""ETSI SOL005 VNF package management subscriptions and notifications (the ``vnfpkgm`` face).

The machinery is the LCM one (:mod:`netweave.services.vnflcm_notify`): the subscriptions are
rows of the same table with ``api = "vnfpkgm"`` (:class:`EtsiSubscriptions`: SSRF rules, the
GET test, BASIC/OAuth2 callback authentication sealed at rest, nothing stored when refused),
and the notifications are :class:`DirectedEvent` s in the one durable outbox, delivered with its
retries and back-off by the same worker through :class:`VnfPkgmChannel`.

What is notified comes from the native package events, so both faces are covered by one path:
:meth:`VnfPkgmNotifier.observe` runs inside each change's transaction (the hook bus) and turns

- ``PackageUploaded`` (a chart uploaded through ``/o2dms/v1``, a bare chart or a CSAR uploaded
  through ``vnfpkgm``: the VNF package's row is made ONBOARDED in the same transaction) into
  ``VnfPackageOnboardingNotification``;
- ``PackageChanged`` whose state really changed (AVAILABLE ↔ DEPRECATED, i.e. ENABLED ↔
  DISABLED) into ``VnfPackageChangeNotification`` ``OP_STATE_CHANGE``;
- ``PackageDeleted`` into ``VnfPackageChangeNotification`` ``PKG_DELETE``.

A notification therefore commits with the change it reports. A package adopted from a backend
(found there, never uploaded through the gateway) is not notified: no change of the gateway's
made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from netweave.errors import InvalidInput
from netweave.models import PackageState
from netweave.notifications import Notifications
from netweave.notifications.delivery import CallbackTarget
from netweave.notifications.events import DirectedEvent
from netweave.operations.events import EventBatch, HookBus, PackageNote
from netweave.packaging.vnfd import Vnfd, software_version
from netweave.services.vnflcm_notify import (
    EtsiSubscriptions,
    SubscriptionList,
    products_match,
)
from netweave.store import Store
from netweave.store.outbox import Delivery
from netweave.store.vnf import VnfLcmSubscriptionRecord

API: Final = "vnfpkgm"
#: SOL005 V3.7.1 vnfpkgm v2 (the face's ``Version`` header and its notifications').
API_VERSION: Final = "2.4.0"
ONBOARDING_NOTIFICATION: Final = "VnfPackageOnboardingNotification"
CHANGE_NOTIFICATION: Final = "VnfPackageChangeNotification"
NOTIFICATION_TYPES: Final = (ONBOARDING_NOTIFICATION, CHANGE_NOTIFICATION)
OP_STATE_CHANGE: Final = "OP_STATE_CHANGE"
PKG_DELETE: Final = "PKG_DELETE"
#: The filter attributes that say which packages (SOL005: alternatives, one at most).
_PACKAGE_SELECTORS: Final = ("vnfProductsFromProviders", "vnfdId", "vnfPkgId")
#: Filter attributes that apply to the change notification only.
_CHANGE_ONLY: Final = ("operationalState", "usageState")


@dataclass(frozen=True, slots=True)
class PackageFacts:
    """What a ``PkgmNotificationsFilter`` selects a VNF package by."""

    vnf_pkg_id: str
    vnfd_id: str
    provider: str
    product: str
    software_version: str
    vnfd_version: str
    operational_state: str
    usage_state: str


def check_pkgm_filter(major: int, wanted: Mapping[str, Any]) -> None:
    """What the request schema cannot say (SOL005 Table 9.5.3.2-1, notes 1 and 2): the
    package selectors are alternatives; ``operationalState``/``usageState`` only with the
    change notification."""
    del major  # one version (v2)
    given = [name for name in _PACKAGE_SELECTORS if wanted.get(name)]
    if len(given) > 1:
        raise InvalidInput(
            f"filter: give one of {', '.join(_PACKAGE_SELECTORS)}, not {' and '.join(given)}",
            details={"field": f"filter.{given[1]}"},
        )
    types = wanted.get("notificationTypes") or []
    for name in _CHANGE_ONLY:
        if wanted.get(name) and types and CHANGE_NOTIFICATION not in types:
            raise InvalidInput(
                f"filter.{name} applies to {CHANGE_NOTIFICATION} only, which notificationTypes "
                "leaves out",
                details={"field": f"filter.{name}"},
            )


def pkgm_matches(
    subscription: VnfLcmSubscriptionRecord, notification_type: str, facts: PackageFacts
) -> bool:
    """SOL005 ``PkgmNotificationsFilter``: every attribute given must match (lists: any of
    their values); the states apply to the change notification only."""
    wanted = subscription.filter or {}
    types = wanted.get("notificationTypes") or []
    if types and notification_type not in types:
        return False
    products = wanted.get("vnfProductsFromProviders") or []
    if products and not products_match(products, facts):
        return False
    vnfd_ids = wanted.get("vnfdId") or []
    if vnfd_ids and facts.vnfd_id not in vnfd_ids:
        return False
    pkg_ids = wanted.get("vnfPkgId") or []
    if pkg_ids and facts.vnf_pkg_id not in pkg_ids:
        return False
    if notification_type == CHANGE_NOTIFICATION:
        states = wanted.get("operationalState") or []
        if states and facts.operational_state not in states:
            return False
        usage = wanted.get("usageState") or []
        if usage and facts.usage_state not in usage:
            return False
    return True


def render_pkgm_subscription(record: VnfLcmSubscriptionRecord) -> dict[str, Any]:
    """``PkgmSubscription``; the authentication is never returned."""
    body: dict[str, Any] = {"id": record.subscription_id}
    if record.filter:
        body["filter"] = record.filter
    body["callbackUri"] = record.callback_uri
    body["_links"] = {"self": {"href": f"{record.api_base}/subscriptions/{record.subscription_id}"}}
    return body


class VnfPkgmNotifier:
    """Runs in each change's transaction (:meth:`HookBus.observe`); see the module docstring."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.subscriptions = SubscriptionList(store, API)

    async def observe(self, batch: EventBatch) -> None:
        if not batch.packages:
            return
        subscriptions = await self.subscriptions()
        if not subscriptions:
            return
        for note in list(batch.packages):
            await self._note(batch, note, subscriptions)

    async def _note(
        self, batch: EventBatch, note: PackageNote, subscriptions: list[VnfLcmSubscriptionRecord]
    ) -> None:
        payload: dict[str, Any]
        if note.event_type == "PackageUploaded":
            kind = ONBOARDING_NOTIFICATION
            payload = {}
        elif note.event_type == "PackageDeleted":
            kind = CHANGE_NOTIFICATION
            payload = {"changeType": PKG_DELETE}
        elif note.event_type == "PackageChanged":
            kind = CHANGE_NOTIFICATION
            payload = {"changeType": OP_STATE_CHANGE}
        else:
            return
        facts = await self._facts(note)
        if note.event_type == "PackageChanged":
            before = _operational(note.previous_state)
            if note.previous_state is None or before == facts.operational_state:
                return  # set to the state it had: nothing changed
            payload["operationalState"] = facts.operational_state
        targets = tuple(s.subscription_id for s in subscriptions if pkgm_matches(s, kind, facts))
        if not targets:
            return
        payload = {
            "notificationType": kind,
            "vnfPkgId": facts.vnf_pkg_id,
            "vnfdId": facts.vnfd_id,
            **payload,
        }
        # One subscription's notifications about one package go out one at a time, in order.
        batch.directed(DirectedEvent(kind, payload, targets, f"vnfpkg:{facts.vnf_pkg_id}"))

    async def _facts(self, note: PackageNote) -> PackageFacts:
        """The package's facts, read in the change's transaction (after a deletion its row is
        gone: the event's copy then; the VNF package's own row, if any, goes later)."""
        wire = note.package
        package_id = str(wire["packageId"])
        row = await self._store.vnf_package_of(package_id)
        vnf_pkg_id = row.vnf_pkg_id if row is not None else package_id
        if row is not None and row.vnfd is not None:
            vnfd = Vnfd.from_json(row.vnfd)
            identity = (
                vnfd.vnfd_id,
                vnfd.provider,
                vnfd.product_name,
                vnfd.software_version,
                vnfd.vnfd_version,
            )
        else:
            version = str(wire.get("artifactVersion") or "")
            identity = (
                package_id,
                str(wire.get("provider") or "netweave"),
                str(wire.get("name") or ""),
                software_version(version, (wire.get("extensions") or {}).get("appVersion")),
                version,
            )
        record = await self._store.get_package(package_id)
        state = record.state.value if record is not None else str(wire.get("state"))
        in_use = record is not None and bool(await self._store.package_ids_in_use([package_id]))
        return PackageFacts(
            vnf_pkg_id=vnf_pkg_id,
            vnfd_id=identity[0],
            provider=identity[1],
            product=identity[2],
            software_version=identity[3],
            vnfd_version=identity[4],
            operational_state=_operational(state),
            usage_state="IN_USE" if in_use else "NOT_IN_USE",
        )


def _operational(state: str | None) -> str:
    # The one mapping of the native state (netweave.services.vnfpkgm.VnfPackageView).
    return "DISABLED" if state == PackageState.DEPRECATED.value else "ENABLED"


class VnfPkgmChannel:
    """The outbox worker's channel for the two package notification types."""

    event_types = frozenset(NOTIFICATION_TYPES)

    def __init__(self, store: Store) -> None:
        self._store = store

    async def target(self, delivery: Delivery) -> CallbackTarget | None:
        subscription = await self._store.get_vnf_subscription(delivery.subscription_id)
        if subscription is None or subscription.api != API:
            return None
        body = pkgm_notification_body(delivery.event_id, subscription, delivery.payload)
        headers = {"Version": API_VERSION}
        return CallbackTarget(subscription.callback_uri, subscription.authentication, body, headers)


def pkgm_notification_body(
    event_id: str, subscription: VnfLcmSubscriptionRecord, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """SOL005 clause 9.5.2.8/9.5.2.9; ``id`` is the event's, the same for every subscriber and
    every retry."""
    base = subscription.api_base
    body: dict[str, Any] = {
        "id": event_id,
        "notificationType": payload["notificationType"],
        "subscriptionId": subscription.subscription_id,
        "timeStamp": payload["timeStamp"],
        "vnfPkgId": payload["vnfPkgId"],
        "vnfdId": payload["vnfdId"],
    }
    for key in ("changeType", "operationalState"):
        if key in payload:
            body[key] = payload[key]
    body["_links"] = {
        "vnfPackage": {"href": f"{base}/vnf_packages/{payload['vnfPkgId']}"},
        "subscription": {"href": f"{base}/subscriptions/{subscription.subscription_id}"},
    }
    return body


def pkgm_subscriptions(
    store: Store,
    hooks: HookBus,
    notifications: Notifications | None,
    *,
    test_callback: bool = True,
) -> EtsiSubscriptions:
    """The face's subscriptions, with its notifier observing every change and its channel
    added to the delivery worker."""
    hooks.observe(VnfPkgmNotifier(store).observe)
    if notifications is not None:
        notifications.worker.add_channel(VnfPkgmChannel(store))
    return EtsiSubscriptions(
        store, notifications, test_callback=test_callback, api=API, check=check_pkgm_filter
    )


__all__ = [
    "API_VERSION",
    "CHANGE_NOTIFICATION",
    "NOTIFICATION_TYPES",
    "ONBOARDING_NOTIFICATION",
    "PackageFacts",
    "VnfPkgmChannel",
    "VnfPkgmNotifier",
    "check_pkgm_filter",
    "pkgm_matches",
    "pkgm_notification_body",
    "pkgm_subscriptions",
    "render_pkgm_subscription",
]

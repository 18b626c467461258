"""What a gateway event is about, which subscriptions it matches, and the notification body.

The services report each change as a :data:`GatewayEvent` (:class:`PackageEvent`,
:class:`DeploymentEvent`, :class:`OperationEvent`); the hook bus records it in the outbox inside
the change's transaction and broadcasts it to plugins after commit. For the outbox each event
becomes :class:`EventFacts`: its type, the ids a subscription filter can select on, an ordering
key (events about one deployment share ``deployment:<id>``, so they are delivered in order) and
the time it was recorded, i.e. just before its transaction commits (see
:mod:`netweave.notifications.recorder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from netweave.models import Operation, ResourceStatus
from netweave.models.paths import (
    API_PREFIX,
    deployment_path,
    operation_path,
    package_path,
    subscription_path,
)

#: The ETSI-style notification type for operation state changes.
OPERATION_STATE_CHANGED = "OperationStateChanged"


@dataclass(frozen=True, slots=True)
class PackageEvent:
    """A package was uploaded, changed or deleted (``package``: its wire form, camelCase)."""

    event_type: str
    package: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """A deployment was created, changed or deleted (``deployment``: its wire form)."""

    event_type: str
    deployment: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OperationEvent:
    """An operation occurrence entered a state (``previous_state``: ``None`` when created).

    ``resources``: what the backend reported holding when the operation reached this state
    (``()`` when the deployment is gone; ``None`` when the runner had no report)."""

    operation: Operation
    previous_state: str | None
    resources: tuple[ResourceStatus, ...] | None = None


@dataclass(frozen=True, slots=True)
class DirectedEvent:
    """An event whose subscribers the service that raised it chose already (the ETSI face's
    LCM notifications: their own subscriptions, filter rules and shapes). Recorded as it is;
    never broadcast to plugins. The recorder stamps ``timeStamp`` into the payload."""

    event_type: str
    payload: dict[str, Any]
    subscription_ids: tuple[str, ...]
    ordering_key: str | None = None


GatewayEvent = PackageEvent | DeploymentEvent | OperationEvent | DirectedEvent


@dataclass(frozen=True, slots=True)
class EventFacts:
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]
    deployment_id: str | None = None
    package_id: str | None = None
    operation_id: str | None = None
    adapter: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ordering_key(self) -> str | None:
        if self.deployment_id is not None:
            return f"deployment:{self.deployment_id}"
        if self.package_id is not None:
            return f"package:{self.package_id}"
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def package_facts(event_type: str, package: Mapping[str, Any], now: datetime) -> EventFacts:
    return EventFacts(
        event_type=event_type,
        occurred_at=now,
        data=dict(package),
        package_id=_str(package.get("packageId")),
        adapter=_str(package.get("adapter")),
    )


def deployment_facts(event_type: str, deployment: Mapping[str, Any], now: datetime) -> EventFacts:
    return EventFacts(
        event_type=event_type,
        occurred_at=now,
        data=dict(deployment),
        deployment_id=_str(deployment.get("deploymentId")),
        package_id=_str(deployment.get("packageId")),
        adapter=_str(deployment.get("adapter")),
    )


def operation_facts(
    operation: Operation, previous_state: str | None, now: datetime, package_id: str | None
) -> EventFacts:
    data = operation.model_dump(mode="json", by_alias=True)
    return EventFacts(
        event_type=OPERATION_STATE_CHANGED,
        occurred_at=now,
        data=data,
        deployment_id=_str(data.get("deploymentId")),
        package_id=package_id,
        operation_id=_str(data.get("operationId")),
        adapter=_str(data.get("adapter")),
        extra={"operationState": data.get("state"), "previousState": previous_state},
    )


def matches(subscription_filter: Mapping[str, Any], facts: EventFacts) -> bool:
    """A stored filter (camelCase, as the API took it): every non-empty list must contain the
    event's value; an event without that attribute (a package event under ``deploymentIds``)
    does not match."""

    def allows(key: str, value: str | None) -> bool:
        wanted = subscription_filter.get(key) or []
        return not wanted or (value is not None and value in wanted)

    return (
        allows("eventTypes", facts.event_type)
        and allows("deploymentIds", facts.deployment_id)
        and allows("packageIds", facts.package_id)
        and allows("adapters", facts.adapter)
    )


def wants_package(subscription_filter: Mapping[str, Any]) -> bool:
    return bool(subscription_filter.get("packageIds"))


def event_payload(facts: EventFacts) -> dict[str, Any]:
    """What the outbox keeps: the notification without its per-subscription members."""
    payload: dict[str, Any] = {
        "notificationType": facts.event_type,
        "timeStamp": facts.occurred_at.isoformat().replace("+00:00", "Z"),
    }
    for key, value in (
        ("deploymentId", facts.deployment_id),
        ("packageId", facts.package_id),
        ("operationId", facts.operation_id),
        ("adapter", facts.adapter),
    ):
        if value is not None:
            payload[key] = value
    payload.update({k: v for k, v in facts.extra.items() if v is not None})
    payload["data"] = facts.data
    return payload


def notification_body(
    event_id: str, subscription_id: str, payload: Mapping[str, Any], api_prefix: str
) -> dict[str, Any]:
    """The JSON a callback receives. ``id`` is the same for every subscriber and every retry of
    one event (ETSI: de-duplicate by it)."""
    # ``api_prefix`` is the public URL followed by the native API's prefix.
    root = api_prefix.removesuffix(API_PREFIX)
    links: dict[str, Any] = {
        "subscription": {"href": subscription_path(subscription_id, root=root)}
    }
    if "deploymentId" in payload:
        links["deployment"] = {"href": deployment_path(payload["deploymentId"], root=root)}
    if "operationId" in payload:
        links["operation"] = {"href": operation_path(payload["operationId"], root=root)}
    if "packageId" in payload and "deploymentId" not in payload:
        links["package"] = {"href": package_path(payload["packageId"], root=root)}
    return {"id": event_id, "subscriptionId": subscription_id, **payload, "_links": links}


__all__ = [
    "OPERATION_STATE_CHANGED",
    "DeploymentEvent",
    "DirectedEvent",
    "EventFacts",
    "GatewayEvent",
    "OperationEvent",
    "PackageEvent",
    "deployment_facts",
    "event_payload",
    "matches",
    "notification_body",
    "operation_facts",
    "package_facts",
]

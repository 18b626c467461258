"""Subscriptions to gateway events (delivery is done by the notification outbox)."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import Field

from netweave.models.base import RequestModel, WireModel


class EventType(enum.StrEnum):
    PACKAGE_UPLOADED = "PackageUploaded"
    PACKAGE_CHANGED = "PackageChanged"
    PACKAGE_DELETED = "PackageDeleted"
    DEPLOYMENT_CREATED = "DeploymentCreated"
    DEPLOYMENT_CHANGED = "DeploymentChanged"
    DEPLOYMENT_DELETED = "DeploymentDeleted"
    OPERATION_STATE_CHANGED = "OperationStateChanged"


class SubscriptionFilter(RequestModel):
    event_types: list[EventType] = Field(default_factory=list)
    deployment_ids: list[str] = Field(default_factory=list)
    package_ids: list[str] = Field(default_factory=list)
    adapters: list[str] = Field(default_factory=list)


class SubscriptionRequest(RequestModel):
    callback_uri: str = Field(min_length=1, max_length=2048)
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)


class Subscription(WireModel):
    subscription_id: str
    callback_uri: str
    filter: SubscriptionFilter
    created_at: datetime


class SubscriptionList(WireModel):
    items: list[Subscription]
    total: int
    limit: int
    offset: int

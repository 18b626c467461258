"""Rows the gateway stores, as plain dataclasses (no ORM objects leave the store)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from netweave.models import DeploymentStatus, OperationState, OperationType, PackageState


@dataclass(slots=True)
class PackageRecord:
    package_id: str
    name: str
    version: str
    artifact_name: str
    package_type: str
    #: Stored states are UPLOADED, AVAILABLE, DEPRECATED; IN_USE is derived when read.
    state: PackageState
    adapter: str
    backend_ref: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    provider: str | None = None
    package_uri: str | None = None
    checksum: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)


class RenderedPage(NamedTuple):
    """A page of package views as ``Store.package_views(rendered=True)`` gives it: each
    view's JSON, and the last one's (name, version), where the next page starts."""

    bodies: list[bytes]
    last: tuple[str, str] | None


#: What renders a package's view for the store to keep in its row
#: (``Store.set_package_renderer``): its JSON before and after the state value.
RenderPackage = Callable[[PackageRecord], tuple[bytes, bytes]]


@dataclass(slots=True)
class DeploymentRecord:
    deployment_id: str
    name: str
    namespace: str
    package_id: str
    package_version: str
    adapter: str
    status: DeploymentStatus
    created_at: datetime
    updated_at: datetime
    #: Adapter's handle; ``None`` until the create operation reached the backend.
    backend_ref: str | None = None
    resource_pool_id: str | None = None
    status_message: str | None = None
    revision: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    #: What the reconciler found changed outside the gateway: ``{"since": iso, "differences":
    #: [DriftItem wire dicts]}``; ``None`` while the backend holds what the gateway deployed.
    drift: dict[str, Any] | None = None


@dataclass(slots=True)
class OperationRecord:
    operation_id: str
    operation_type: OperationType
    deployment_id: str
    adapter: str
    state: OperationState
    start_time: datetime
    state_entered_time: datetime
    params: dict[str, Any] = field(default_factory=dict)
    is_cancel_pending: bool = False
    attempts: int = 0
    #: Problem-details dict of the last failure.
    error: dict[str, Any] | None = None
    #: Which worker holds it and until when (several replicas share one database).
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


@dataclass(slots=True)
class SubscriptionRecord:
    subscription_id: str
    callback_uri: str
    filter: dict[str, Any]
    created_at: datetime
    #: ETSI SubscriptionAuthentication with its secrets (for calling back); never returned.
    authentication: dict[str, Any] | None = None


@dataclass(slots=True)
class IdempotencyRecord:
    key: str
    #: Who sent it and to which route: a key is scoped to (principal, method, path).
    scope: str
    request_hash: str
    status_code: int
    body: bytes
    headers: dict[str, str]
    created_at: datetime


@dataclass(slots=True)
class ApiTokenRecord:
    token_id: str
    #: sha256 of the token; the token itself is never stored.
    token_hash: str
    scopes: list[str]
    created_at: datetime
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of rows plus the real total matching the filter."""

    items: list[Any]
    total: int

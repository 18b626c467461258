"""Persistence: what the gateway itself stores (SQLAlchemy 2 async; SQLite or PostgreSQL)."""

from netweave.store.interface import MAX_PAGE_LIMIT, Store, urgent_writes
from netweave.store.records import (
    ApiTokenRecord,
    DeploymentRecord,
    IdempotencyRecord,
    OperationRecord,
    PackageRecord,
    Page,
    RenderedPage,
    RenderPackage,
    SubscriptionRecord,
)

__all__ = [
    "MAX_PAGE_LIMIT",
    "ApiTokenRecord",
    "DeploymentRecord",
    "IdempotencyRecord",
    "OperationRecord",
    "PackageRecord",
    "Page",
    "RenderPackage",
    "RenderedPage",
    "Store",
    "SubscriptionRecord",
    "urgent_writes",
]

"""Persistence: what the gateway itself stores (SQLAlchemy 2 async; SQLite or PostgreSQL)."""

from netweave.store.interface import Store
from netweave.store.records import (
    ApiTokenRecord,
    DeploymentRecord,
    IdempotencyRecord,
    OperationRecord,
    PackageRecord,
    Page,
    SubscriptionRecord,
)

__all__ = [
    "ApiTokenRecord",
    "DeploymentRecord",
    "IdempotencyRecord",
    "OperationRecord",
    "PackageRecord",
    "Page",
    "Store",
    "SubscriptionRecord",
]

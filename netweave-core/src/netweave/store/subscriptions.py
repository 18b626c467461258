"""The native subscription repository of ``SqlStore``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from netweave.store.engine import SqlBase
from netweave.store.records import Page, SubscriptionRecord
from netweave.store.rows import _S, _require_aware, _values


def _subscription(row: Row[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(**row._mapping)


class SubscriptionRows(SqlBase):
    """Native event subscriptions (``subscriptions``)."""

    def subscription_writes(self) -> tuple[int, int]:
        return self._subscription_writes.counts()

    async def add_subscription(self, record: SubscriptionRecord) -> None:
        _require_aware("created_at", record.created_at)
        with self._tracking(self._subscription_writes):
            await self._insert(f"subscription {record.subscription_id!r}", _S, _values(record))

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        row = await self._get_by("reading a subscription", _S, "subscription_id", subscription_id)
        return None if row is None else _subscription(row)

    async def list_subscriptions(self, *, limit: int = 100, offset: int = 0) -> Page:
        return await self._page_where_equal(
            "listing subscriptions",
            _S,
            {},
            ("created_at", "subscription_id"),
            _subscription,
            limit,
            offset,
        )

    async def delete_subscription(self, subscription_id: str) -> None:
        with self._tracking(self._subscription_writes):
            await self._delete(
                f"subscription {subscription_id!r}", _S, _S.c.subscription_id == subscription_id
            )

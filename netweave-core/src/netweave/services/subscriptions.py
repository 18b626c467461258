"""Subscriptions. On create the callback URL is checked syntactically, then against the SSRF
rules (and the OAuth2 token endpoint too), then tested (GET must answer 204, as ETSI does);
only then is the subscription stored, with its callback authentication (never returned; its
secrets encrypted, see :mod:`netweave.notifications.sealing`).
Delivery is :mod:`netweave.notifications`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from netweave.errors import InvalidInput, NetweaveError, NotFound
from netweave.models import Subscription, SubscriptionFilter, SubscriptionList, SubscriptionRequest
from netweave.notifications import Notifications, authentication_record
from netweave.notifications.sealing import SecretUnavailable
from netweave.store import Store, SubscriptionRecord


def validate_callback_uri(uri: str) -> str:
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise InvalidInput(
            f"callbackUri is not a valid URL: {exc}", details={"field": "callbackUri"}
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "callbackUri must be an absolute http(s) URL with a host",
            details={"field": "callbackUri"},
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "callbackUri must not carry credentials; configure authentication instead",
            details={"field": "callbackUri"},
        )
    if parts.fragment:
        raise InvalidInput("callbackUri must not have a fragment", details={"field": "callbackUri"})
    del port
    return uri


def _to_wire(record: SubscriptionRecord) -> Subscription:
    return Subscription(
        subscription_id=record.subscription_id,
        callback_uri=record.callback_uri,
        filter=SubscriptionFilter.model_validate(record.filter),
        created_at=record.created_at,
    )


class SubscriptionService:
    def __init__(
        self,
        store: Store,
        notifications: Notifications | None = None,
        *,
        test_callback: bool = True,
    ) -> None:
        self._store = store
        self._notifications = notifications
        self._test_callback = test_callback

    async def create(self, request: SubscriptionRequest) -> Subscription:
        validate_callback_uri(request.callback_uri)
        authentication = authentication_record(request.authentication)
        stored = authentication
        if self._notifications is not None:
            # Encrypted at rest (netweave.notifications.sealing); the test below uses the clear.
            try:
                stored = self._notifications.sealer.seal(authentication)
            except SecretUnavailable as exc:
                raise NetweaveError(f"cannot store the callback secrets: {exc}") from None
            client = self._notifications.client
            await client.check(request.callback_uri, request.authentication)
            if self._test_callback:
                await client.test(request.callback_uri, authentication)
        record = SubscriptionRecord(
            subscription_id=str(uuid.uuid4()),
            callback_uri=request.callback_uri,
            filter=request.filter.model_dump(mode="json", by_alias=True),
            created_at=datetime.now(UTC),
            authentication=stored,
        )
        await self._store.add_subscription(record)
        return _to_wire(record)

    async def get(self, subscription_id: str) -> Subscription:
        record = await self._store.get_subscription(subscription_id)
        if record is None:
            raise NotFound(
                f"subscription {subscription_id!r} not found",
                details={"subscriptionId": subscription_id},
            )
        return _to_wire(record)

    async def query(self, *, limit: int = 100, offset: int = 0) -> SubscriptionList:
        page = await self._store.list_subscriptions(limit=limit, offset=offset)
        return SubscriptionList(
            items=[_to_wire(r) for r in page.items], total=page.total, limit=limit, offset=offset
        )

    async def delete(self, subscription_id: str) -> None:
        await self.get(subscription_id)
        await self._store.delete_subscription(subscription_id)

"""``/o2dms/v1/subscriptions``: stored subscriptions (delivery comes with the outbox)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from netweave.api.common import (
    API_PREFIX,
    JSON_BODY,
    IdempotencyKeyHeader,
    Limit,
    Offset,
    SubscriptionIdParam,
    idempotent,
    model_response,
    problems,
)
from netweave.models import Subscription, SubscriptionList, SubscriptionRequest
from netweave.services import Services

BASE = f"{API_PREFIX}/subscriptions"


class SubscriptionController(Controller):
    path = BASE
    tags = ["subscriptions"]

    @get(operation_id="ListSubscriptions", summary="List subscriptions")
    async def list_subscriptions(
        self, services: NamedDependency[Services], limit: Limit = 100, offset: Offset = 0
    ) -> SubscriptionList:
        return await services.subscriptions.query(limit=limit, offset=offset)

    @post(
        operation_id="CreateSubscription",
        summary="Subscribe a callback URL to gateway events",
        status_code=HTTP_201_CREATED,
        opt=JSON_BODY,
        responses=problems(400, 415, 422),
    )
    async def create_subscription(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        data: JSONBody[SubscriptionRequest],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Subscription]:
        async def produce() -> Response[Any]:
            subscription = await services.subscriptions.create(data)
            return model_response(
                subscription,
                HTTP_201_CREATED,
                {"Location": f"{BASE}/{subscription.subscription_id}"},
            )

        return await idempotent(request, services, idempotency_key, data, produce)

    @get("/{subscriptionId:str}", operation_id="GetSubscription", summary="Get a subscription")
    async def get_subscription(
        self, services: NamedDependency[Services], subscription_id: SubscriptionIdParam
    ) -> Subscription:
        return await services.subscriptions.get(subscription_id.lower())

    @delete(
        "/{subscriptionId:str}",
        operation_id="DeleteSubscription",
        summary="Delete a subscription",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_subscription(
        self, services: NamedDependency[Services], subscription_id: SubscriptionIdParam
    ) -> None:
        await services.subscriptions.delete(subscription_id.lower())

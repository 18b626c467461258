"""Subscriptions, idempotency keys and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from netweave.errors import AlreadyExists, InvalidInput, NotFound
from netweave.store.records import ApiTokenRecord, IdempotencyRecord, SubscriptionRecord
from netweave.store.sql import SqlStore
from store_factories import T0


def subscription(n: int, **over: object) -> SubscriptionRecord:
    values: dict[str, object] = {
        "subscription_id": f"sub-{n:03d}",
        "callback_uri": f"https://smo.example/cb/{n}",
        "filter": {"eventTypes": ["DeploymentCreated"], "adapters": []},
        "created_at": T0 + timedelta(seconds=n),
    }
    values.update(over)
    return SubscriptionRecord(**values)  # type: ignore[arg-type]


def idempotency(
    key: str = "k1", scope: str = "alice POST /o2dms/v1/nfDeployments", **over: object
) -> IdempotencyRecord:
    values: dict[str, object] = {
        "key": key,
        "scope": scope,
        "request_hash": "sha256:abc",
        "status_code": 201,
        "body": b'{"deploymentId": "d1"}\x00\xff',
        "headers": {"location": "/o2dms/v1/nfDeployments/d1", "content-type": "application/json"},
        "created_at": T0,
    }
    values.update(over)
    return IdempotencyRecord(**values)  # type: ignore[arg-type]


async def test_subscriptions(store: SqlStore) -> None:
    for n in range(5):
        await store.add_subscription(subscription(n))
    assert await store.get_subscription("sub-003") == subscription(3)
    secured = subscription(
        9,
        authentication={
            "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
            "paramsOauth2ClientCredentials": {"clientId": "c", "clientPassword": "s3cret"},
        },
    )
    await store.add_subscription(secured)
    assert await store.get_subscription("sub-009") == secured
    await store.delete_subscription("sub-009")
    assert await store.get_subscription("nope") is None
    with pytest.raises(AlreadyExists, match="subscription_id='sub-001'"):
        await store.add_subscription(subscription(1))
    page = await store.list_subscriptions(limit=2, offset=3)
    assert page.total == 5
    assert [s.subscription_id for s in page.items] == ["sub-003", "sub-004"]
    await store.delete_subscription("sub-003")
    with pytest.raises(NotFound):
        await store.delete_subscription("sub-003")
    assert (await store.list_subscriptions()).total == 4
    with pytest.raises(InvalidInput):
        await store.list_subscriptions(limit=-1)


async def test_idempotency_keys(store: SqlStore) -> None:
    record = idempotency()
    await store.put_idempotency(record)
    assert await store.get_idempotency("k1", record.scope) == record
    # Same key from another principal or route is a different record.
    assert await store.get_idempotency("k1", "bob POST /o2dms/v1/nfDeployments") is None
    await store.put_idempotency(idempotency(scope="bob POST /o2dms/v1/nfDeployments"))
    with pytest.raises(AlreadyExists):
        await store.put_idempotency(idempotency(status_code=500))
    assert (await store.get_idempotency("k1", record.scope)).status_code == 201  # type: ignore[union-attr]


async def test_purge_idempotency(store: SqlStore) -> None:
    for n in range(6):
        await store.put_idempotency(idempotency(f"k{n}", created_at=T0 + timedelta(hours=n)))
    assert await store.purge_idempotency(T0 + timedelta(hours=3)) == 3
    assert await store.get_idempotency("k2", idempotency().scope) is None
    assert await store.get_idempotency("k3", idempotency().scope) is not None
    assert await store.purge_idempotency(T0) == 0


async def test_api_tokens(store: SqlStore) -> None:
    assert await store.count_api_tokens() == 0
    token = ApiTokenRecord(
        token_id="tok-1",
        token_hash="f" * 64,
        scopes=["o2dms:read", "o2dms:write"],
        created_at=T0,
        description="bootstrap",
    )
    await store.add_api_token(token)
    assert await store.find_api_token("f" * 64) == token
    assert await store.find_api_token("e" * 64) is None
    with pytest.raises(AlreadyExists) as caught:
        await store.add_api_token(
            ApiTokenRecord(token_id="tok-2", token_hash="f" * 64, scopes=[], created_at=T0)
        )
    # The hash of a secret never appears in an error.
    assert "f" * 64 not in caught.value.message
    assert "f" * 64 not in str(caught.value.details)
    await store.add_api_token(
        ApiTokenRecord(token_id="tok-3", token_hash="0" * 64, scopes=["o2dms:admin"], created_at=T0)
    )
    assert await store.count_api_tokens() == 2

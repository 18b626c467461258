"""Deployments: CRUD, the (adapter, namespace, name) key, filters with real totals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from netweave.errors import AlreadyExists, InvalidInput, NotFound
from netweave.models import DeploymentStatus
from netweave.store.sql import SqlStore
from store_factories import T0, deployment


async def test_roundtrip_with_every_field(store: SqlStore) -> None:
    record = deployment(
        backend_ref="release/web",
        resource_pool_id="pool-1",
        status_message="installing",
        revision=3,
        values={"replicaCount": 2, "image": {"tag": "1.25"}, "list": [1, "a", None]},
        extensions={"helm": {"chart": "nginx"}},
    )
    await store.add_deployment(record)
    assert await store.get_deployment("dep-web") == record
    assert await store.get_deployment("dep-missing") is None


async def test_unique_adapter_namespace_name(store: SqlStore) -> None:
    await store.add_deployment(deployment())
    with pytest.raises(AlreadyExists) as caught:
        await store.add_deployment(deployment(deployment_id="dep-other"))
    assert "namespace='default'" in caught.value.message
    assert "name='web'" in caught.value.message
    # Same name elsewhere is fine: other namespace, other adapter.
    await store.add_deployment(deployment(deployment_id="dep-2", namespace="prod"))
    await store.add_deployment(deployment(deployment_id="dep-3", adapter="argo"))
    with pytest.raises(AlreadyExists, match="deployment_id='dep-2'"):
        await store.add_deployment(deployment("other", deployment_id="dep-2"))
    assert (await store.list_deployments()).total == 3


async def test_update_and_delete(store: SqlStore) -> None:
    await store.add_deployment(deployment())
    updated = await store.update_deployment(
        "dep-web",
        status=DeploymentStatus.DEPLOYED,
        revision=1,
        backend_ref="release/web",
        values={"a": 1},
    )
    assert updated.status is DeploymentStatus.DEPLOYED
    assert updated.revision == 1
    assert updated.values == {"a": 1}
    assert updated.updated_at > T0
    assert await store.get_deployment("dep-web") == updated
    with pytest.raises(InvalidInput):
        await store.update_deployment("dep-web", status="EXPLODED")
    with pytest.raises(InvalidInput):
        await store.update_deployment("dep-web", name=None)
    with pytest.raises(NotFound):
        await store.update_deployment("dep-nope", revision=2)
    await store.delete_deployment("dep-web")
    with pytest.raises(NotFound):
        await store.delete_deployment("dep-web")
    assert await store.get_deployment("dep-web") is None


async def test_filters_order_and_totals(store: SqlStore) -> None:
    for i in range(30):
        await store.add_deployment(
            deployment(
                f"d{i:02d}",
                namespace="prod" if i % 3 == 0 else "dev",
                package_id="nginx-1.0.0" if i % 2 else "redis-7",
                adapter="argo" if i >= 25 else "helm-local",
                status=DeploymentStatus.DEPLOYED if i % 5 else DeploymentStatus.FAILED,
                # Same creation time for pairs: the id breaks ties.
                created_at=T0 + timedelta(minutes=i // 2),
            )
        )
    everything = await store.list_deployments(limit=1000)
    assert everything.total == 30
    keys = [(d.created_at, d.deployment_id) for d in everything.items]
    assert keys == sorted(keys)

    prod = await store.list_deployments(namespace="prod", limit=4, offset=2)
    assert prod.total == 10
    assert [d.name for d in prod.items] == ["d06", "d09", "d12", "d15"]
    assert (await store.list_deployments(package_id="redis-7")).total == 15
    assert (await store.list_deployments(status=DeploymentStatus.FAILED)).total == 6
    assert (await store.list_deployments(adapter="argo")).total == 5
    both = await store.list_deployments(
        adapter="helm-local", status=DeploymentStatus.FAILED, namespace="prod"
    )
    assert [d.name for d in both.items] == ["d00", "d15"]
    assert both.total == 2
    with pytest.raises(InvalidInput):
        await store.list_deployments(offset=-5)


async def test_a_reconciler_round_reads_many_deployments_at_once(store: SqlStore) -> None:
    for name in ("a", "b", "c"):
        await store.add_deployment(deployment(name))
    found = await store.get_deployments(["dep-a", "dep-c", "dep-missing", "dep-a"])
    assert sorted(found) == ["dep-a", "dep-c"]
    assert found["dep-c"] == await store.get_deployment("dep-c")
    assert await store.get_deployments([]) == {}


async def test_deployment_references_page_by_id(store: SqlStore) -> None:
    """What the reconciler lists: (id, adapter, backend reference) in id order, after a key."""
    for name in ("c", "a", "d", "b"):
        ref = None if name == "b" else f"default/{name}"
        await store.add_deployment(deployment(name, backend_ref=ref, adapter=f"ad-{name}"))
    first = await store.deployment_refs(after=None, limit=3)
    assert first == [
        ("dep-a", "ad-a", "default/a"),
        ("dep-b", "ad-b", None),
        ("dep-c", "ad-c", "default/c"),
    ]
    assert await store.deployment_refs(after="dep-c", limit=3) == [("dep-d", "ad-d", "default/d")]
    assert await store.deployment_refs(after="dep-d", limit=3) == []

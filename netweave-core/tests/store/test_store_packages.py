"""Packages: CRUD, unique keys, filters with real totals, IN_USE derived from deployments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from netweave.errors import AlreadyExists, InvalidInput, NotFound
from netweave.models import PackageState
from netweave.store.sql import SqlStore
from store_factories import T0, deployment, package


async def test_add_get_find_roundtrip(store: SqlStore) -> None:
    record = package(
        description="web server",
        provider="bitnami",
        package_uri="oci://registry/nginx",
        checksum="sha256:" + "a" * 64,
        extensions={"chart": {"appVersion": "1.25", "deps": ["common"]}, "n": 1},
    )
    await store.add_package(record)
    assert await store.get_package("nginx-1.0.0") == record
    assert await store.find_package("nginx", "1.0.0") == record
    assert await store.get_package("missing") is None
    assert await store.find_package("nginx", "9.9.9") is None


async def test_duplicate_id_and_duplicate_name_version(store: SqlStore) -> None:
    await store.add_package(package())
    with pytest.raises(AlreadyExists) as by_key:
        await store.add_package(package(package_id="other-id"))
    assert "name='nginx'" in by_key.value.message
    assert "version='1.0.0'" in by_key.value.message
    with pytest.raises(AlreadyExists) as by_id:
        await store.add_package(package(version="2.0.0", package_id="nginx-1.0.0"))
    assert "package_id='nginx-1.0.0'" in by_id.value.message
    # Nothing of the rejected rows was written.
    assert (await store.list_packages()).total == 1


async def test_update_sets_fields_and_updated_at(store: SqlStore) -> None:
    await store.add_package(package())
    updated = await store.update_package(
        "nginx-1.0.0", state=PackageState.DEPRECATED, description="old"
    )
    assert updated.state is PackageState.DEPRECATED
    assert updated.description == "old"
    assert updated.updated_at > T0
    assert updated.created_at == T0
    assert await store.get_package("nginx-1.0.0") == updated


async def test_update_explicit_updated_at_and_extensions(store: SqlStore) -> None:
    await store.add_package(package())
    when = datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
    updated = await store.update_package("nginx-1.0.0", updated_at=when, extensions={"x": [1]})
    assert updated.updated_at == when
    assert updated.extensions == {"x": [1]}


async def test_update_rejects_unknown_field_in_use_and_missing(store: SqlStore) -> None:
    await store.add_package(package())
    with pytest.raises(InvalidInput, match="bogus"):
        await store.update_package("nginx-1.0.0", bogus=1)
    with pytest.raises(InvalidInput, match="created_at"):
        await store.update_package("nginx-1.0.0", created_at="yesterday")
    with pytest.raises(InvalidInput, match="derived"):
        await store.update_package("nginx-1.0.0", state=PackageState.IN_USE)
    with pytest.raises(InvalidInput):
        await store.update_package("nginx-1.0.0", state="NOPE")
    with pytest.raises(NotFound):
        await store.update_package("missing", description="x")
    assert (await store.get_package("nginx-1.0.0")) == package()


async def test_update_to_existing_name_version_is_already_exists(store: SqlStore) -> None:
    await store.add_package(package(version="1"))
    await store.add_package(package(version="2"))
    with pytest.raises(AlreadyExists, match="version='1'"):
        await store.update_package("nginx-2", version="1")


async def test_in_use_cannot_be_stored(store: SqlStore) -> None:
    with pytest.raises(InvalidInput):
        await store.add_package(package(state=PackageState.IN_USE))
    assert (await store.list_packages()).total == 0


async def test_delete(store: SqlStore) -> None:
    await store.add_package(package())
    await store.delete_package("nginx-1.0.0")
    assert await store.get_package("nginx-1.0.0") is None
    with pytest.raises(NotFound):
        await store.delete_package("nginx-1.0.0")


async def _seed(store: SqlStore) -> None:
    # 3 names x 4 versions; "redis" on another adapter, one deprecated, one uploaded.
    for name in ("nginx", "redis", "apache"):
        for minor in range(4):
            await store.add_package(
                package(
                    name,
                    f"1.{minor}.0",
                    adapter="helm-b" if name == "redis" else "helm-local",
                    package_type="kustomize" if (name, minor) == ("apache", 3) else "helm",
                    state=PackageState.DEPRECATED
                    if (name, minor) == ("nginx", 0)
                    else PackageState.UPLOADED
                    if (name, minor) == ("nginx", 3)
                    else PackageState.AVAILABLE,
                )
            )


async def test_list_filters_order_and_totals(store: SqlStore) -> None:
    await _seed(store)
    page = await store.list_packages()
    assert page.total == 12
    assert [(p.name, p.version) for p in page.items] == sorted(
        (p.name, p.version) for p in page.items
    )
    assert page.items[0].package_id == "apache-1.0.0"

    by_name = await store.list_packages(name="nginx", limit=2, offset=1)
    assert by_name.total == 4
    assert [p.version for p in by_name.items] == ["1.1.0", "1.2.0"]

    assert (await store.list_packages(version="1.2.0")).total == 3
    assert [p.package_id for p in (await store.list_packages(package_type="kustomize")).items] == [
        "apache-1.3.0"
    ]
    redis = await store.list_packages(adapter="helm-b")
    assert {p.name for p in redis.items} == {"redis"}
    assert redis.total == 4
    combined = await store.list_packages(name="nginx", adapter="helm-b")
    assert combined.total == 0
    assert combined.items == []


async def test_pagination_past_the_end_keeps_real_total(store: SqlStore) -> None:
    await _seed(store)
    page = await store.list_packages(limit=5, offset=10)
    assert page.total == 12
    assert len(page.items) == 2
    beyond = await store.list_packages(limit=5, offset=500)
    assert beyond.total == 12
    assert beyond.items == []
    count_only = await store.list_packages(limit=0)
    assert count_only.total == 12
    assert count_only.items == []


@pytest.mark.parametrize(
    ("limit", "offset"),
    [(-1, 0), (0, -1), (10**6, 0), (10, 2**70), (-(2**70), 0)],
)
async def test_bad_limit_offset_is_invalid_input(store: SqlStore, limit: int, offset: int) -> None:
    with pytest.raises(InvalidInput):
        await store.list_packages(limit=limit, offset=offset)


async def test_in_use_is_derived_from_deployments(store: SqlStore) -> None:
    await _seed(store)
    await store.add_deployment(deployment("a", package_id="nginx-1.1.0"))
    await store.add_deployment(deployment("b", package_id="nginx-1.1.0"))
    await store.add_deployment(deployment("c", package_id="nginx-1.0.0"))  # deprecated one
    in_use = await store.list_packages(state=PackageState.IN_USE)
    assert [p.package_id for p in in_use.items] == ["nginx-1.0.0", "nginx-1.1.0"]
    assert in_use.total == 2
    # Stored states come back as stored; IN_USE is never written.
    assert {p.state for p in in_use.items} == {PackageState.DEPRECATED, PackageState.AVAILABLE}
    # The other states select unused packages only (a client sees used ones as IN_USE).
    available = await store.list_packages(state=PackageState.AVAILABLE, name="nginx")
    assert [p.package_id for p in available.items] == ["nginx-1.2.0"]
    assert (await store.list_packages(state=PackageState.DEPRECATED)).total == 0
    assert (await store.list_packages(state=PackageState.UPLOADED)).total == 1
    assert (await store.list_packages(state=PackageState.AVAILABLE)).total == 9
    assert await store.package_ids_in_use(
        ["nginx-1.0.0", "nginx-1.1.0", "nginx-1.2.0", "nope", "nginx-1.1.0"]
    ) == {"nginx-1.0.0", "nginx-1.1.0"}
    assert await store.package_ids_in_use([]) == set()

    await store.delete_deployment("dep-c")
    assert (await store.list_packages(state=PackageState.DEPRECATED)).total == 1
    assert await store.package_ids_in_use(["nginx-1.0.0"]) == set()


async def test_package_ids_in_use_handles_long_lists(store: SqlStore) -> None:
    await store.add_deployment(deployment("a", package_id="p-1500"))
    ids = [f"p-{i}" for i in range(2500)]
    assert await store.package_ids_in_use(ids) == {"p-1500"}


async def test_timestamps_round_trip_as_aware_utc(store: SqlStore) -> None:
    # Given in +05:30, read back as the same instant in UTC, microseconds kept.
    ist = timezone_offset(5, 30)
    created = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=ist)
    await store.add_package(package(created_at=created, updated_at=created))
    got = await store.get_package("nginx-1.0.0")
    assert got is not None
    assert got.created_at == created
    assert got.created_at.tzinfo is UTC
    assert got.created_at.hour == 4
    assert got.created_at.minute == 30
    assert got.created_at.microsecond == 123456


async def test_naive_datetimes_are_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="timezone"):
        await store.add_package(package(created_at=datetime(2026, 1, 1)))
    await store.add_package(package())
    with pytest.raises(InvalidInput, match="timezone"):
        await store.update_package("nginx-1.0.0", updated_at=datetime(2026, 1, 1))


def timezone_offset(hours: int, minutes: int) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))

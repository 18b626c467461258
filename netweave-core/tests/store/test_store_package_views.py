"""Package views: a package with its IN_USE in one read, keyset pages, counts (both backends).

On SQLite these reads run on the store's kept connection and, for package rows, on the driver
itself with the store's own conversion of the row: the records must equal what the SQLAlchemy
path (``get_package``/``list_packages``) reads.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from netweave.errors import InvalidInput
from netweave.models import PackageState
from netweave.store import packages
from netweave.store.sql import SqlStore
from store_factories import deployment, package

FILTERS: list[dict[str, Any]] = [
    {},
    {"name": "nginx"},
    {"version": "1.2.0"},
    {"adapter": "helm-b"},
    {"package_type": "kustomize"},
    {"name": "nginx", "adapter": "helm-b"},
]
STATES = [None, PackageState.IN_USE, PackageState.AVAILABLE, PackageState.DEPRECATED]


async def _seed(store: SqlStore) -> None:
    for name, adapter in (("nginx", "helm-local"), ("apache", "helm-local"), ("redis", "helm-b")):
        for minor in range(4):
            await store.add_package(
                package(
                    name,
                    f"1.{minor}.0",
                    adapter=adapter,
                    package_type="kustomize" if (name, minor) == ("apache", 3) else "helm",
                    state=PackageState.DEPRECATED if minor == 0 else PackageState.AVAILABLE,
                )
            )
    await store.add_deployment(deployment("a", package_id="nginx-1.1.0"))
    await store.add_deployment(deployment("b", package_id="nginx-1.0.0"))


def _equal(filters: dict[str, Any]) -> dict[str, Any]:
    return {key: filters.get(key) for key in ("name", "version", "package_type", "adapter")}


async def test_a_view_is_the_record_and_whether_a_deployment_uses_it(store: SqlStore) -> None:
    created = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5)))
    record = package(
        description="web ✓ server",
        provider="bitnami",
        package_uri="oci://registry/nginx",
        checksum="sha256:" + "a" * 64,
        extensions={"chart": {"appVersion": "1.25", "deps": ["common"]}, "n": 1.5, "z": None},
        created_at=created,
        updated_at=datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC),
    )
    if store.dialect == "sqlite":  # the driver-level read is in use, not a silent fallback
        assert packages._SQLITE_PACKAGE_ROW is not None
    await store.add_package(record)
    await store.add_package(package("bare", "0.1.0"))  # every optional field empty
    ids = ["nginx-1.0.0", "bare-0.1.0"]
    if store.dialect == "sqlite":
        # JSON msgspec refuses (Infinity, as the standard library writes it; PostgreSQL's JSON
        # type refuses it too) and a big int: the driver-level read still equals SQLAlchemy's.
        odd = {"x": float("inf"), "y": 2**70}
        await store.add_package(package("odd", "0.2.0", extensions=odd))
        ids.append("odd-0.2.0")
    for package_id in ids:
        view = await store.package_view(package_id)
        assert view == (await store.get_package(package_id), False)
    view = await store.package_view("nginx-1.0.0")
    assert view is not None and view[0].created_at == created  # the same instant, in UTC
    assert view[0].created_at.tzinfo is UTC and view[0].state is PackageState.AVAILABLE
    await store.add_deployment(deployment("web", package_id="nginx-1.0.0"))
    assert await store.package_view("nginx-1.0.0") == (record, True)
    assert await store.package_view("missing") is None


async def test_keyset_pages_walk_every_filter_exactly_as_the_offset_list(store: SqlStore) -> None:
    await _seed(store)
    for filters in FILTERS:
        for state in STATES:
            expected = await store.list_packages(**filters, state=state, limit=1000)
            walked: list[tuple[str, bool]] = []
            after: tuple[str, str] | None = None
            while True:
                views, more = await store.package_views(
                    equal=_equal(filters), state=state, after=after, limit=2
                )
                walked += [(r.package_id, used) for r, used in views]
                if not more:
                    break
                assert len(views) == 2
                after = (views[-1][0].name, views[-1][0].version)
            assert [p for p, _ in walked] == [p.package_id for p in expected.items]
            in_use = await store.package_ids_in_use([p for p, _ in walked])
            assert {p for p, used in walked if used} == in_use
            count = await store.count_packages(equal=_equal(filters), state=state)
            assert count == expected.total, (filters, state)


async def test_offset_counts_from_the_keyset_position(store: SqlStore) -> None:
    await _seed(store)
    views, more = await store.package_views(equal={}, after=("nginx", "1.0.0"), offset=1, limit=2)
    assert [r.package_id for r, _ in views] == ["nginx-1.2.0", "nginx-1.3.0"]
    assert more
    views, more = await store.package_views(equal={}, after=("redis", "1.3.0"), limit=5)
    assert (views, more) == ([], False)
    views, more = await store.package_views(equal={}, limit=12)
    assert len(views) == 12 and not more


@pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (0, -1), (10**6, 0), (10, 2**70)])
async def test_bad_bounds_are_invalid_input(store: SqlStore, limit: int, offset: int) -> None:
    with pytest.raises(InvalidInput):
        await store.package_views(equal={}, limit=limit, offset=offset)


async def test_reads_see_the_latest_commit_and_a_transaction_its_own_writes(
    store: SqlStore,
) -> None:
    await store.add_package(package())
    assert await store.package_view("nginx-1.0.0") is not None  # the reader is open now
    await store.update_package("nginx-1.0.0", state=PackageState.DEPRECATED)
    view = await store.package_view("nginx-1.0.0")
    assert view is not None and view[0].state is PackageState.DEPRECATED
    assert await store.count_packages(equal={}) == 1
    async with store.transaction():
        await store.add_package(package("inside", "1.0.0"))
        assert await store.package_view("inside-1.0.0") is not None
        assert await store.count_packages(equal={}) == 2
        views, _ = await store.package_views(equal={}, limit=10)
        assert [r.name for r, _ in views] == ["inside", "nginx"]
    await store.delete_package("inside-1.0.0")
    assert await store.package_view("inside-1.0.0") is None
    assert await store.count_packages(equal={}) == 1


async def test_backend_refs_are_those_of_the_adapters_packages(store: SqlStore) -> None:
    await _seed(store)
    for adapter in ("helm-local", "helm-b"):
        page = await store.list_packages(adapter=adapter, limit=1000)
        assert page.items
        assert await store.package_backend_refs(adapter) == {r.backend_ref for r in page.items}
    assert await store.package_backend_refs("no-such-adapter") == set()

"""The SOL005 VNF package listing in the store (``vnf_package_page``), on SQLite and
PostgreSQL: the rows and the native packages no row names merged in (created_at, id) order,
read a page at a time with the filter's terms pushed down (a superset the face then checks)."""

from __future__ import annotations

from datetime import timedelta

from netweave.store.sql import SqlStore
from netweave.store.vnf import ColumnTerm
from netweave.store.vnfpkg import VnfPackageRecord
from store_factories import T0, deployment, package


async def _catalogue(store: SqlStore) -> None:
    """40 native packages (one deployed), a CSAR row onboarded into one more, a CREATED row,
    and an ONBOARDED row whose native package was deleted."""
    for i in range(40):
        await store.add_package(
            package(f"app{i:02d}", "1.0.0", created_at=T0 + timedelta(seconds=2 * i))
        )
    await store.add_deployment(deployment("web", package_id="app03-1.0.0"))
    await store.add_package(
        package("chart", "2.0.0", package_id="vnfd-x", created_at=T0 + timedelta(seconds=11))
    )
    for vnf_pkg_id, state, package_id, second in (
        ("pkg-csar", "ONBOARDED", "vnfd-x", 11),
        ("pkg-new", "CREATED", None, 21),
        ("pkg-gone", "ONBOARDED", "deleted-1.0.0", 31),
    ):
        stamp = T0 + timedelta(seconds=second)
        await store.add_vnf_package(
            VnfPackageRecord(
                vnf_pkg_id=vnf_pkg_id,
                onboarding_state=state,
                created_at=stamp,
                updated_at=stamp,
                package_id=package_id,
                vnfd={"descriptor_id": "vnfd-x"} if package_id == "vnfd-x" else None,
            )
        )


async def test_pages_merge_rows_and_native_packages_in_order(store: SqlStore) -> None:
    await _catalogue(store)
    seen: list[str] = []
    after = None
    for _ in range(10):  # bounded: 41 packages in pages of 7
        page = await store.vnf_package_page(after=after, limit=7)
        seen += [e.vnf_pkg_id for e in page]
        if len(page) < 7:
            break
        after = (page[-1].created_at, page[-1].vnf_pkg_id)
    natives = [f"app{i:02d}-1.0.0" for i in range(40)]
    # The CSAR's native package is its row's (not listed twice); the deleted one is gone.
    assert "vnfd-x" not in seen and "pkg-gone" not in seen
    assert sorted(seen) == sorted([*natives, "pkg-csar", "pkg-new"])
    assert seen.index("pkg-csar") == seen.index("app05-1.0.0") + 1  # 11 s: after app05 (10 s)
    everything = {e.vnf_pkg_id: e for e in await store.vnf_package_page(after=None, limit=100)}
    assert everything["pkg-csar"].package is not None
    assert everything["pkg-csar"].package.package_id == "vnfd-x"
    assert everything["pkg-csar"].record is not None
    assert everything["pkg-new"].package is None
    assert everything["app03-1.0.0"].in_use and not everything["app04-1.0.0"].in_use
    assert everything["app04-1.0.0"].record is None


async def test_filters_are_pushed_down_as_supersets(store: SqlStore) -> None:
    await _catalogue(store)

    async def ids(*where: ColumnTerm, limit: int = 100) -> list[str]:
        return [e.vnf_pkg_id for e in await store.vnf_package_page(after=None, limit=limit,
                                                                    where=where)]  # fmt: skip

    assert await ids(ColumnTerm("vnfd_id", "in", ("vnfd-x", "app07-1.0.0"))) == [
        "pkg-csar",  # 11 s
        "app07-1.0.0",  # 14 s
    ]
    assert await ids(ColumnTerm("onboarding_state", "in", ("CREATED",))) == ["pkg-new"]
    assert await ids(ColumnTerm("vnf_pkg_id", "in", ("pkg-new", "nope"))) == ["pkg-new"]
    # By native name: the rows are kept (their product name may be their VNFD's).
    assert await ids(ColumnTerm("name", "in", ("app09",), or_present="kind")) == [
        "pkg-csar",
        "app09-1.0.0",
        "pkg-new",
    ]
    # A filter leaves far fewer rows than the limit: one query answers it.
    assert await ids(ColumnTerm("vnfd_id", "nin", ("vnfd-x",)), limit=3) == [
        "app00-1.0.0",
        "app01-1.0.0",
        "app02-1.0.0",
    ]

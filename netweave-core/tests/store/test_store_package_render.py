"""Rendered package pages (``package_views(render=…)``): the same bytes as rendering the views,
each package rendered once until it changes, and never a view older than its row — whether
this store wrote the change (it forgets the package's view) or another replica did (the row
version read with each page differs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextvars import Context
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from netweave.models import PackageState
from netweave.operations.convert import package_json, package_list_json
from netweave.services.packages import _page_body
from netweave.store import PackageRecord, RenderedPage
from netweave.store.sql import SqlStore, create_store
from store_factories import T0, deployment, package

EQUAL: dict[str, Any] = {"name": None, "version": None, "package_type": None, "adapter": None}


class Renderer:
    """``package_json`` counting the packages it renders."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def __call__(self, record: PackageRecord, in_use: bool) -> bytes:
        self.rendered.append(record.package_id)
        return package_json(record, in_use=in_use)


async def _seed(store: SqlStore, count: int = 12) -> None:
    for i in range(count):
        await store.add_package(
            package(
                f"app{i:02d}",
                "1.0.0",
                description=f"app ✓ {i}",
                extensions={"chart": {"appVersion": "1.0", "i": i}, "n": 1.5},
                state=PackageState.DEPRECATED if i % 3 == 0 else PackageState.AVAILABLE,
            )
        )


async def _rendered(store: SqlStore, render: Renderer, **query: Any) -> tuple[RenderedPage, bool]:
    return await store.package_views(equal=query.pop("equal", EQUAL), render=render, **query)


async def _expected(store: SqlStore, **query: Any) -> tuple[bytes, bool, tuple[str, str] | None]:
    views, more = await store.package_views(equal=query.pop("equal", EQUAL), **query)
    body = package_list_json(views, total=0, limit=100, offset=0, marker=None)
    last = (views[-1][0].name, views[-1][0].version) if views else None
    return body, more, last


def _body(page: RenderedPage) -> bytes:
    return _page_body(page.bodies, total=0, limit=100, offset=0, marker=None)


async def _same(store: SqlStore, render: Renderer, **query: Any) -> None:
    page, more = await _rendered(store, render, **dict(query))
    body, expected_more, last = await _expected(store, **dict(query))
    assert (_body(page), more, page.last) == (body, expected_more, last)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 5},
        {"limit": 5, "after": ("app04", "1.0.0")},
        {"limit": 5, "offset": 3},
        {"limit": 100},
        {"limit": 5, "after": ("zzz", "1")},  # past the end: empty
        {"limit": 3, "state": PackageState.DEPRECATED},
        {"limit": 3, "state": PackageState.IN_USE},
        {"limit": 3, "equal": {**EQUAL, "name": "app05"}},
    ],
)
async def test_a_rendered_page_is_the_rendered_views_and_is_rendered_once(
    store: SqlStore, query: dict[str, Any]
) -> None:
    await _seed(store)
    await store.add_deployment(deployment("a", package_id="app01-1.0.0"))
    render = Renderer()
    await _same(store, render, **query)
    first = list(render.rendered)
    await _same(store, render, **query)  # every package of the page known: nothing rendered
    assert render.rendered == first


async def test_the_page_body_is_the_page_encoded_whole(store: SqlStore) -> None:
    await _seed(store, 3)
    views, _ = await store.package_views(equal=EQUAL)
    page, _ = await store.package_views(equal=EQUAL, render=Renderer())
    for total, limit, offset, marker in ((3, 100, 0, None), (7, 2, 1, "k1.WyJhIiwiMSJd")):
        assert _page_body(
            page.bodies, total=total, limit=limit, offset=offset, marker=marker
        ) == package_list_json(views, total=total, limit=limit, offset=offset, marker=marker)
    assert _page_body([], total=0, limit=5, offset=0, marker=None) == package_list_json(
        [], total=0, limit=5, offset=0, marker=None
    )


async def _changes_one_at_a_time(reader: SqlStore, writer: SqlStore) -> None:
    """Each kind of change alone (a changed IN_USE re-reads the whole page, which would
    hide a stale neighbour), then the page compared with the rows."""
    render = Renderer()
    await _same(reader, render, limit=10)
    await writer.update_package("app01-1.0.0", description="changed")  # updated_at only
    await _same(reader, render, limit=10)
    await writer.update_package("app00-1.0.0", state=PackageState.AVAILABLE)
    await _same(reader, render, limit=10)
    await writer.delete_package("app02-1.0.0")
    # again, with another created_at (the service stamps each new record with its own time)
    await writer.add_package(
        package("app02", "1.0.0", description="again", created_at=T0 + timedelta(seconds=1))
    )
    await _same(reader, render, limit=10)
    await writer.add_deployment(deployment("a", package_id="app03-1.0.0"))  # IN_USE now
    await _same(reader, render, limit=10)
    page, _ = await _rendered(reader, render, limit=10)
    assert b'"description":"changed"' in page.bodies[1]
    assert b'"description":"again"' in page.bodies[2] and b'"IN_USE"' in page.bodies[3]
    render.rendered.clear()
    await _same(reader, render, limit=10)
    assert render.rendered == []  # nothing changed since: nothing rendered


async def test_a_change_through_this_store_is_on_the_next_page(store: SqlStore) -> None:
    await _seed(store, 4)
    await _changes_one_at_a_time(store, store)


async def test_a_change_in_a_transaction_is_seen_once_it_commits(store: SqlStore) -> None:
    await _seed(store, 2)
    render = Renderer()
    async with store.transaction():
        await store.update_package("app01-1.0.0", description="inside")
        # A reader outside the transaction meanwhile renders (and keeps) the committed row.
        outside = asyncio.create_task(_rendered(store, render, limit=10), context=Context())
        page, _ = await outside
        assert b'"description":"inside"' not in page.bodies[1]
    await _same(store, render, limit=10)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.update_package("app01-1.0.0", description="rolled back")
            raise RuntimeError("undo")
    await _same(store, render, limit=10)
    page, _ = await _rendered(store, render, limit=10)
    assert b'"description":"inside"' in page.bodies[1]


@pytest.fixture
async def replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database, neither its sole writer (as replicas on PostgreSQL)."""
    monkeypatch.setattr(SqlStore, "sole_writer", property(lambda self: False))
    url = f"sqlite:///{tmp_path / 'netweave.db'}"
    first, second = create_store(url), create_store(url)
    assert isinstance(first, SqlStore) and isinstance(second, SqlStore)
    await first.migrate()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_change_by_another_replica_is_on_the_next_page(
    replicas: tuple[SqlStore, SqlStore],
) -> None:
    reader, writer = replicas
    await _seed(writer, 4)
    await _changes_one_at_a_time(reader, writer)


async def test_a_count_is_kept_until_the_next_package_write(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(store, 3)
    reads: list[str] = []
    read = store._read

    async def counting(what: str, *args: Any) -> Any:
        reads.append(what)
        return await read(what, *args)

    monkeypatch.setattr(store, "_read", counting)
    assert await store.count_packages(equal=EQUAL) == 3
    assert await store.count_packages(equal=EQUAL) == 3
    kept = 1 if store.sole_writer else 2
    assert reads.count("counting packages") == kept
    await store.add_package(package("zeta", "1.0.0"))
    assert await store.count_packages(equal=EQUAL) == 4
    await store.delete_package("app00-1.0.0")
    assert await store.count_packages(equal=EQUAL) == 3
    # a state filter reads deployments too: counted each time
    await store.count_packages(equal=EQUAL, state=PackageState.IN_USE)
    await store.add_deployment(deployment("a", package_id="zeta-1.0.0"))
    assert await store.count_packages(equal=EQUAL, state=PackageState.IN_USE) == 1

"""Rendered package pages (``package_views(rendered=True)``) come from the view each package
row keeps (``set_package_renderer``): the same bytes as rendering the views, the stored view
equal to a fresh render after every kind of write, rows without a view (a database migrated
from before, rows written by a store without a renderer or by older code) listed correctly
and filled in by the background pass, and never a view older than its row — whether this
store wrote the change or another replica did. Both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextvars import Context
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from netweave.models import PackageState
from netweave.operations.convert import (
    package_json,
    package_json_parts,
    package_list_json,
    package_view_key,
)
from netweave.services.packages import _page_body
from netweave.store import PackageRecord, RenderedPage, migrate
from netweave.store.rows import _P, _values
from netweave.store.sql import SqlStore
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from store_factories import T0, deployment, package
from support.postgres import Backend, empty_tables

EQUAL: dict[str, Any] = {"name": None, "version": None, "package_type": None, "adapter": None}


class Renderer:
    """``package_json_parts`` counting the packages it renders."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def __call__(self, record: PackageRecord) -> tuple[bytes, bytes]:
        self.rendered.append(record.package_id)
        return package_json_parts(record)


def _renderer(store: SqlStore) -> Renderer:
    render = Renderer()
    store.set_package_renderer(render, key=package_view_key())
    return render


async def _seed(store: SqlStore, count: int = 12) -> None:
    for i in range(count):
        await store.add_package(
            package(
                f"app{i:02d}",
                "1.0.0",
                description=f"app ✓ {i}",
                # Keys in an order PostgreSQL's JSONB does not keep: the view is the row's.
                extensions={"zz": {"appVersion": "1.0", "i": i}, "n": 1.5, "a": None},
                state=PackageState.DEPRECATED if i % 3 == 0 else PackageState.AVAILABLE,
                # Not UTC: read back as UTC, and the view must be the row as read.
                created_at=datetime(2026, 3, 1, 10, i, 0, 123456, tzinfo=UTC).astimezone(),
            )
        )


async def _rendered(store: SqlStore, **query: Any) -> tuple[RenderedPage, bool]:
    return await store.package_views(equal=query.pop("equal", EQUAL), rendered=True, **query)


async def _expected(store: SqlStore, **query: Any) -> tuple[bytes, bool, tuple[str, str] | None]:
    views, more = await store.package_views(equal=query.pop("equal", EQUAL), **query)
    body = package_list_json(views, total=0, limit=100, offset=0, marker=None)
    last = (views[-1][0].name, views[-1][0].version) if views else None
    return body, more, last


def _body(page: RenderedPage) -> bytes:
    return _page_body(page.bodies, total=0, limit=100, offset=0, marker=None)


async def _same(store: SqlStore, **query: Any) -> None:
    page, more = await _rendered(store, **dict(query))
    body, expected_more, last = await _expected(store, **dict(query))
    assert (_body(page), more, page.last) == (body, expected_more, last)


async def _stored_views(store: SqlStore) -> dict[str, bytes | None]:
    """Each row's stored view as the page joins it (``None``: no fresh view), by id."""
    statement = select(
        _P.c.package_id,
        _P.c.state,
        _P.c.view_head,
        _P.c.view_tail,
        _P.c.view_key,
        _P.c.view_at == _P.c.updated_at,
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    views: dict[str, bytes | None] = {}
    for package_id, state, head, tail, key, current in rows:
        fresh = head is not None and key == package_view_key() and bool(current)
        views[package_id] = head + b'"' + state.encode() + b'"' + tail if fresh else None
    return views


async def _assert_views_are_fresh_renders(store: SqlStore) -> None:
    """Every row has a view, equal to rendering the record read back (IN_USE aside)."""
    expected = {}
    for record in (await store.list_packages(limit=1000)).items:
        expected[record.package_id] = package_json(record, in_use=False)
    assert await _stored_views(store) == expected


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 5},
        {"limit": 5, "after": ("app04", "1.0.0")},
        {"limit": 5, "offset": 3},
        {"limit": 5, "offset": 3, "after": ("app02", "1.0.0")},
        {"limit": 100},
        {"limit": 0},
        {"limit": 5, "after": ("zzz", "1")},  # past the end: empty
        {"limit": 3, "state": PackageState.DEPRECATED},
        {"limit": 3, "state": PackageState.IN_USE},
        {"limit": 3, "equal": {**EQUAL, "name": "app05"}},
    ],
)
async def test_a_page_is_its_stored_views_joined_with_nothing_rendered(
    store: SqlStore, query: dict[str, Any]
) -> None:
    render = _renderer(store)
    await _seed(store)
    await store.add_deployment(deployment("a", package_id="app01-1.0.0"))
    await _assert_views_are_fresh_renders(store)
    render.rendered.clear()
    await _same(store, **query)
    assert render.rendered == []  # every row had its view: one read, no rendering


async def test_the_page_body_is_the_page_encoded_whole(store: SqlStore) -> None:
    _renderer(store)
    await _seed(store, 3)
    views, _ = await store.package_views(equal=EQUAL)
    page, _ = await _rendered(store)
    for total, limit, offset, marker in ((3, 100, 0, None), (7, 2, 1, "k1.WyJhIiwiMSJd")):
        assert _page_body(
            page.bodies, total=total, limit=limit, offset=offset, marker=marker
        ) == package_list_json(views, total=total, limit=limit, offset=offset, marker=marker)
    assert _page_body([], total=0, limit=5, offset=0, marker=None) == package_list_json(
        [], total=0, limit=5, offset=0, marker=None
    )


async def test_one_package_is_its_stored_view(store: SqlStore) -> None:
    render = _renderer(store)
    await _seed(store, 3)
    await store.add_deployment(deployment("a", package_id="app01-1.0.0"))
    render.rendered.clear()
    for package_id in ("app00-1.0.0", "app01-1.0.0", "app02-1.0.0"):
        view = await store.package_view(package_id)
        assert view is not None
        assert await store.package_view_json(package_id) == package_json(view[0], in_use=view[1])
    assert render.rendered == []
    assert await store.package_view_json("nope-1.0.0") is None


async def _changes_one_at_a_time(reader: SqlStore, writer: SqlStore) -> None:
    """Each kind of write, then the reader's page compared with the rows, and the stored
    views with fresh renders."""
    await _same(reader, limit=10)
    await writer.update_package("app01-1.0.0", description="changed")
    await _same(reader, limit=10)
    await writer.update_package("app00-1.0.0", state=PackageState.AVAILABLE)
    await _same(reader, limit=10)
    await writer.update_package(
        "app03-1.0.0", extensions={"b": [1, 2], "a": "x"}, updated_at=T0 + timedelta(days=1)
    )
    await _same(reader, limit=10)
    await writer.delete_package("app02-1.0.0")
    # again, with another created_at (the service stamps each new record with its own time)
    await writer.add_package(
        package("app02", "1.0.0", description="again", created_at=T0 + timedelta(seconds=1))
    )
    await _same(reader, limit=10)
    await writer.add_deployment(deployment("a", package_id="app03-1.0.0"))  # IN_USE now
    await _same(reader, limit=10)
    await _assert_views_are_fresh_renders(writer)
    page, _ = await _rendered(reader, limit=10)
    assert b'"description":"changed"' in page.bodies[1]
    assert b'"description":"again"' in page.bodies[2] and b'"IN_USE"' in page.bodies[3]
    assert b'"a":"x"' in page.bodies[3]
    assert await reader.package_view_json("app01-1.0.0") == page.bodies[1]
    await writer.delete_deployment("dep-a")
    page, _ = await _rendered(reader, limit=10)
    assert b'"state":"DEPRECATED"' in page.bodies[3]  # its own state again


async def test_every_kind_of_write_stores_the_view_of_the_row(store: SqlStore) -> None:
    _renderer(store)
    await _seed(store, 4)
    await _changes_one_at_a_time(store, store)


async def test_a_change_in_a_transaction_is_seen_once_it_commits(store: SqlStore) -> None:
    _renderer(store)
    await _seed(store, 2)
    async with store.transaction():
        await store.update_package("app01-1.0.0", description="inside")
        await store.add_package(package("app05", "1.0.0"))
        # A reader outside the transaction meanwhile sees the committed rows.
        outside = asyncio.create_task(_rendered(store, limit=10), context=Context())
        page, _ = await outside
        assert b'"description":"inside"' not in page.bodies[1] and len(page.bodies) == 2
    await _same(store, limit=10)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.update_package("app01-1.0.0", description="rolled back")
            raise RuntimeError("undo")
    await _same(store, limit=10)
    page, _ = await _rendered(store, limit=10)
    assert b'"description":"inside"' in page.bodies[1]
    await _assert_views_are_fresh_renders(store)


async def test_rows_without_a_view_are_rendered_when_read_then_filled_in(
    store: SqlStore,
) -> None:
    # Written by a store without a renderer: as rows from before the views were kept.
    await _seed(store, 12)
    await store.update_package("app04-1.0.0", description="changed before")
    assert set((await _stored_views(store)).values()) == {None}
    render = _renderer(store)
    await store.add_package(package("app12", "1.0.0"))  # one row with its view
    await store.add_deployment(deployment("a", package_id="app01-1.0.0"))
    render.rendered.clear()
    for query in ({"limit": 5}, {"limit": 5, "after": ("app05", "1.0.0")}, {"limit": 100}):
        await _same(store, **query)
    view = await store.package_view("app04-1.0.0")
    assert view is not None
    assert await store.package_view_json("app04-1.0.0") == package_json(view[0], in_use=False)
    assert render.rendered  # rendered from the records: they had no view
    # The read started the background pass: it stores every missing view.
    assert store._backfill is not None
    assert await store._backfill == 12
    await _assert_views_are_fresh_renders(store)
    render.rendered.clear()
    await _same(store, limit=100)
    assert render.rendered == []
    assert await store.fill_package_views() == 0


def _downgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_a_database_migrated_from_before_the_views_lists_then_fills_them(
    store: SqlStore,
) -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(_downgrade_to, "0008")
        # Rows as netweave wrote them at 0008 (no view columns then).
        await conn.execute(
            insert(_P),
            [_values(package(f"old{i}", "1.0.0", description=f"old {i}")) for i in range(5)],
        )
    await store.migrate()
    assert await store.current_revision() == migrate.HEAD_REVISION
    assert set((await _stored_views(store)).values()) == {None}
    render = _renderer(store)
    await store.add_deployment(deployment("a", package_id="old2-1.0.0"))
    await _same(store, limit=3)
    await _same(store, limit=3, after=("old2", "1.0.0"))
    started = store._backfill  # by the first read that met a row without its view
    assert started is not None
    assert await started + await store.fill_package_views() == 5
    await _assert_views_are_fresh_renders(store)
    render.rendered.clear()
    await _same(store, limit=10)
    assert render.rendered == []


async def test_a_view_older_than_its_row_or_of_another_rendering_is_not_used(
    store: SqlStore,
) -> None:
    render = _renderer(store)
    await _seed(store, 3)
    # A write by code that does not keep views (an older replica): the row changes, the view
    # stays as it was.
    async with store.engine.begin() as conn:
        await conn.execute(
            update(_P)
            .where(_P.c.package_id == "app01-1.0.0")
            .values(description="by older code", updated_at=T0 + timedelta(days=2))
        )
    render.rendered.clear()
    await _same(store, limit=10)
    assert set(render.rendered) == {"app01-1.0.0"}
    assert store._backfill is not None and await store._backfill == 1  # the pass it started
    # Another rendering (a netweave whose package model differs): every view is rendered again.
    other = Renderer()
    store.set_package_renderer(other, key="other")
    await _same(store, limit=10)
    assert set(other.rendered) == {"app00-1.0.0", "app01-1.0.0", "app02-1.0.0"}
    assert await store.fill_package_views() == 3  # (no pass started: one ended just now)
    store.set_package_renderer(render, key=package_view_key())
    assert await store.fill_package_views() == 3
    await _assert_views_are_fresh_renders(store)


@pytest.fixture
async def replicas(backend: Backend) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database (on PostgreSQL: as two replicas), neither's cache shared."""
    first, second = backend.connect(), backend.connect()
    await first.migrate()
    if backend.name == "postgresql":
        await empty_tables(first)
    for store in (first, second):
        _renderer(store)
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


async def test_a_background_pass_does_not_store_a_view_of_a_row_changed_meanwhile(
    replicas: tuple[SqlStore, SqlStore],
) -> None:
    first, second = replicas
    # Rows without views, then both replicas fill them while the second keeps changing one.
    first.set_package_renderer(Renderer(), key="none")  # writes views under another key
    await _seed(first, 30)
    _renderer(first)

    async def change() -> None:
        for i in range(10):
            await second.update_package("app07-1.0.0", description=f"change {i}")

    await asyncio.gather(first.fill_package_views(), second.fill_package_views(), change())
    await _assert_views_are_fresh_renders(first)
    await _same(first, limit=100)
    await _same(second, limit=100)


async def test_a_count_is_kept_until_the_next_package_write(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _renderer(store)
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

"""The native package repository of ``SqlStore``."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import json
import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, overload

import msgspec
from sqlalchemy import (
    JSON,
    ColumnElement,
    LargeBinary,
    Row,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import ReturningInsert, Update

from netweave.errors import InvalidInput, NotFound
from netweave.models import PackageState
from netweave.store.engine import SqlBase, _translate
from netweave.store.records import PackageRecord, Page, RenderedPage
from netweave.store.records import RenderPackage as Render
from netweave.store.rows import (
    _D,
    _IN_CHUNK,
    _P,
    _changes,
    _check_lengths,
    _enum,
    _insert_into,
    _now,
    _page_bounds,
    _paged,
    _require_aware,
    _update_by,
    _values,
)
from netweave.store.sqlite_inline import LoopConnection, LoopEngine
from netweave.store.tables import UTCDateTime

_log = logging.getLogger("netweave.store")

#: Packages kept by ``get_package`` on a store only this process writes.
_MAX_CACHED_PACKAGES: Final = 1024
#: Counts kept by ``count_packages`` on a store only this process writes (one per filter).
_MAX_KEPT_COUNTS: Final = 1024
#: Rows the background pass renders per write transaction: ~12 ms of rendering and writing
#: (on SQLite under the one writer's lock, on the event loop). Smaller batches took minutes
#: for 100 000 rows under load (each waits for the loop several times), and meanwhile pages
#: of rows not yet filled are rendered when read.
_BACKFILL_BATCH: Final = 500
#: Pause between two of its batches, so requests and other writers go first.
_BACKFILL_PAUSE_S: Final = 0.005
#: Least time between two passes (a pass starts when a read meets a row without its view).
_BACKFILL_INTERVAL_S: Final = 30.0


_STORED_PACKAGE_STATES = frozenset(
    {PackageState.UPLOADED, PackageState.AVAILABLE, PackageState.DEPRECATED}
)

#: The view kept in each row (see ``PackageRow``); the other columns are the record.
_VIEW_COLUMNS: Final = ("view_head", "view_tail", "view_key", "view_at")
_RECORD_COLUMNS: Final = tuple(column for column in _P.c if column.name not in _VIEW_COLUMNS)
_RECORD_NAMES: Final = tuple(column.name for column in _RECORD_COLUMNS)
#: The views' state values: the row's, or IN_USE (derived from deployments, never stored).
_STATE_JSON: Final = {state.value: b'"%s"' % state.value.encode() for state in PackageState}
_IN_USE_JSON: Final = _STATE_JSON[PackageState.IN_USE.value]


def _package(row: Row[Any]) -> PackageRecord:
    data = row._mapping
    values = {name: data[name] for name in _RECORD_NAMES}
    values["state"] = PackageState(values["state"])
    return PackageRecord(**values)


def _copy_package(record: PackageRecord) -> PackageRecord:
    """A copy a caller may change without changing the cached one (records are mutable)."""
    return replace(record, extensions=copy.deepcopy(record.extensions))


def _item(head: bytes, tail: bytes, state: str, in_use: Any) -> bytes:
    """A package view's JSON from its stored parts (see ``PackageRow.view_head``)."""
    if in_use:
        return head + _IN_USE_JSON + tail
    return head + (_STATE_JSON.get(state) or msgspec.json.encode(state)) + tail


#: What ``package_views``/``count_packages`` filter on by equality (keys of their ``equal``).
_PACKAGE_FILTERS: Final = ("name", "version", "package_type", "adapter")


def _package_in_use() -> ColumnElement[bool]:
    return exists().where(_D.c.package_id == _P.c.package_id)


def _view_fresh() -> ColumnElement[bool]:
    """The row's stored view is of the row as it is, rendered as ``view_key`` renders (a
    write by code that does not render views leaves ``view_at`` behind ``updated_at``)."""
    return and_(
        _P.c.view_key == bindparam("view_key", type_=String()),
        _P.c.view_at == _P.c.updated_at,
    )


def _package_filters(
    names: tuple[str, ...], state: str | None, *, keyset: bool
) -> list[ColumnElement[bool]]:
    """The conditions of ``_package_view_statements`` (see there)."""
    where: list[ColumnElement[bool]] = [_P.c[name] == bindparam(f"eq_{name}") for name in names]
    if state == "in_use":
        where.append(_package_in_use())
    elif state == "stored":
        where.extend((_P.c.state == bindparam("eq_state"), ~_package_in_use()))
    if keyset:
        where.append(
            tuple_(_P.c.name, _P.c.version)
            > tuple_(
                bindparam("after_name", type_=String()), bindparam("after_version", type_=String())
            )
        )
    return where


@functools.lru_cache(maxsize=256)  # keyed by filter shapes: bounded all the same
def _package_view_statements(
    names: tuple[str, ...], state: str | None, keyset: bool
) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """The count; the page of packages (the record's columns, the stored view, whether it
    is fresh, ``in_use`` last); and the same page's stored views alone (name, version,
    state, head, tail, fresh, ``in_use``) — where each of ``names`` equals ``eq_<name>``;
    ``state`` ``"in_use"``/``"stored"`` adds the IN_USE rule (a stored state shows only
    while no deployment uses the package, ``eq_state``); ``keyset`` starts after
    (``after_name``, ``after_version``) in (name, version) order, on the unique index."""
    where = _package_filters(names, state, keyset=False)
    count = select(func.count()).select_from(_P).where(*where)
    where = _package_filters(names, state, keyset=keyset)
    order = (_P.c.name, _P.c.version)
    in_use = _package_in_use().label("in_use")
    fresh = _view_fresh().label("fresh")
    view = (_P.c.view_head, _P.c.view_tail, fresh, in_use)
    rows = _paged(select(*_RECORD_COLUMNS, *view).where(*where).order_by(*order))
    views = _paged(
        select(_P.c.name, _P.c.version, _P.c.state, *view).where(*where).order_by(*order)
    )
    return count, rows, views


@functools.lru_cache(maxsize=256)  # keyed by filter shapes: bounded all the same
def _sqlite_page_statement(names: tuple[str, ...], state: str | None, keyset: bool) -> Select[Any]:
    """``_package_view_statements``' page of stored views as SQLite reads it on its driver:
    each row's view already joined around its state (``NULL`` where the row has no fresh
    view, or a state no view is stored with), then the row's name and version.

    SQLite does the joining, and whether a deployment uses the package is an ``IN`` on the
    deployments' package index: of a 100-row page's cost, the seven columns per row handed to
    Python and a correlated ``EXISTS`` per row were a third (the ``IN`` probes the same index
    per row, without the subquery's set-up; it stays O(page) however many deployments)."""
    in_use = _P.c.package_id.in_(select(_D.c.package_id))
    # Literals, not parameters: SQL text of the enum's own values (capitals and underscores).
    state_json = case(
        (in_use, literal_column(f"'{_IN_USE_JSON.decode()}'")),
        *(
            (
                _P.c.state == literal_column(f"'{stored.value}'"),
                literal_column(f"'{_STATE_JSON[stored.value].decode()}'"),
            )
            for stored in sorted(_STORED_PACKAGE_STATES, key=lambda member: member.value)
        ),
    )
    joined = sql_cast(_P.c.view_head.concat(state_json).concat(_P.c.view_tail), LargeBinary)
    view = case((_view_fresh(), joined))
    where = _package_filters(names, state, keyset=keyset)
    order = (_P.c.name, _P.c.version)
    return _paged(select(view, _P.c.name, _P.c.version).where(*where).order_by(*order))


@functools.cache
def _package_refs_statement() -> Select[Any]:
    return select(_P.c.backend_ref).where(_P.c.adapter == bindparam("adapter"))


@functools.cache
def _package_view_statement() -> Select[Any]:
    """One package by id with whether a deployment uses it (one statement, not two)."""
    return select(*_RECORD_COLUMNS, _package_in_use().label("in_use")).where(
        _P.c.package_id == bindparam("key")
    )


@functools.cache
def _package_json_statement() -> Select[Any]:
    """One package's stored view by id: state, head, tail, fresh, ``in_use``."""
    return select(
        _P.c.state,
        _P.c.view_head,
        _P.c.view_tail,
        _view_fresh().label("fresh"),
        _package_in_use().label("in_use"),
    ).where(_P.c.package_id == bindparam("key"))


@functools.cache
def _insert_package_statement() -> ReturningInsert[Any]:
    return insert(_P).returning(*_RECORD_COLUMNS)


@functools.cache
def _store_view_statement() -> Update:
    """A row's view set, ``view_at`` from the row itself (the ``updated_at`` it was rendered
    from: the statement runs in the transaction that wrote or read the row)."""
    return (
        update(_P)
        .where(_P.c.package_id == bindparam("key"))
        .values(
            view_head=bindparam("new_head"),
            view_tail=bindparam("new_tail"),
            view_key=bindparam("new_key"),
            view_at=_P.c.updated_at,
        )
    )


@functools.cache
def _unrendered_statement() -> Select[Any]:
    """Rows after ``after`` (by id) whose view is missing or not fresh, a batch at a time,
    locked (PostgreSQL; rows another writer holds are skipped: that writer renders them)."""
    stale = or_(
        _P.c.view_key.is_(None),
        _P.c.view_key != bindparam("view_key", type_=String()),
        _P.c.view_at.is_(None),
        _P.c.view_at != _P.c.updated_at,
    )
    return (
        select(*_RECORD_COLUMNS)
        .where(_P.c.package_id > bindparam("after", type_=String()), stale)
        .order_by(_P.c.package_id)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)
    )


def _package_view(row: Row[Any]) -> tuple[PackageRecord, bool]:
    return _package(row), bool(row._mapping["in_use"])


def _sqlite_package_row() -> Callable[[Sequence[Any]], tuple[PackageRecord, bool]] | None:
    """A converter of a raw ``sqlite3`` row that starts with ``_RECORD_COLUMNS`` and ends
    with ``in_use`` into a package view, doing what SQLAlchemy's result processing does for
    these column types (SQLite keeps ``DateTime`` as ISO text, naive UTC, and JSON as text);
    ``None`` if a column has a type it does not know, and the store then reads through
    SQLAlchemy (a test compares both).

    Per-row work is kept small: JSON decoded by msgspec (the standard library's parser as the
    fallback for what msgspec refuses, such as NaN), times parsed with their offset, the
    state looked up in a dict, the record built positionally."""
    names: list[str] = []
    times: list[int] = []
    documents: list[int] = []
    state = -1
    for index, column in enumerate(_RECORD_COLUMNS):
        kind = column.type
        if isinstance(kind, UTCDateTime):
            times.append(index)
        elif isinstance(kind, JSON):
            documents.append(index)
        elif column.name == "state":
            state = index
        elif not isinstance(kind, String):
            return None
        names.append(column.name)
    record_fields = [f.name for f in fields(PackageRecord)]
    if state < 0 or sorted(record_fields) != sorted(names):
        return None
    width = len(names)
    order = [names.index(name) for name in record_fields]
    states = {member.value: member for member in PackageState}
    fromisoformat = datetime.fromisoformat
    decode = msgspec.json.decode

    def instant(text: str) -> datetime:
        # Naive UTC text as SQLAlchemy writes it ("YYYY-MM-DD HH:MM:SS[.ffffff]"): parsed with
        # its offset appended, a sixth of the cost of parsing and then replace(tzinfo=UTC).
        if len(text) in (19, 26):
            return fromisoformat(text + "+00:00")
        return fromisoformat(text).replace(tzinfo=UTC)

    def document(text: str) -> Any:
        try:
            return decode(text)
        except (msgspec.DecodeError, ValueError):
            return json.loads(text)

    def convert(row: Sequence[Any]) -> tuple[PackageRecord, bool]:
        values = list(row[:width])
        for index in times:
            value = values[index]
            if value is not None:
                values[index] = instant(value)
        for index in documents:
            value = values[index]
            if value is not None:
                values[index] = document(value)
        value = values[state]
        values[state] = states.get(value) or PackageState(value)
        return PackageRecord(*[values[index] for index in order]), bool(row[-1])

    return convert


_SQLITE_PACKAGE_ROW: Final = _sqlite_package_row()
#: Where a page row (``_package_view_statements``' second) has its stored view.
_HEAD_AT: Final = len(_RECORD_COLUMNS)
_STATE_AT: Final = _RECORD_NAMES.index("state")


def _view_params(
    equal: Mapping[str, Any], state: PackageState | None
) -> tuple[tuple[str, ...], str | None, dict[str, Any]]:
    given = {name: equal[name] for name in _PACKAGE_FILTERS if equal.get(name) is not None}
    params = {f"eq_{name}": value for name, value in given.items()}
    kind: str | None = None
    if state is not None:
        state = _package_state(state)
        kind = "in_use" if state is PackageState.IN_USE else "stored"
        if kind == "stored":
            params["eq_state"] = state.value
    return tuple(given), kind, params


def _package_state(state: Any) -> PackageState:
    return _enum(PackageState, "state", state)


def _check_stored_package_state(state: Any) -> PackageState:
    value = _package_state(state)
    if value not in _STORED_PACKAGE_STATES:
        raise InvalidInput(
            f"package state {value.value} is derived from deployments and cannot be stored",
            details={"field": "state"},
        )
    return value


class PackageRows(SqlBase):
    """Native packages (``packages``), with the read cache and the list views.

    Each row keeps its package's rendered view (``PackageRow.view_head`` …), written with
    the row by every write here, so a list page is one read of stored bytes. A row without a
    fresh view (written before views were stored, by a store without a renderer, or by code
    that does not write them) is rendered when read, and a background pass fills it in."""

    def __init__(self, engine: AsyncEngine | LoopEngine) -> None:
        super().__init__(engine)
        #: Counts by filter, with the package write counts they were read under.
        self._package_counts: dict[Hashable, tuple[tuple[int, int], int]] = {}
        #: What renders the views, and its key (``set_package_renderer``).
        self._renderer: tuple[Render, str] | None = None
        self._backfill: asyncio.Task[int] | None = None
        self._backfill_ended = -_BACKFILL_INTERVAL_S

    def set_package_renderer(self, render: Render, *, key: str) -> None:
        self._renderer = (render, key)

    def _views_renderer(self) -> tuple[Render, str]:
        if self._renderer is None:
            raise RuntimeError("no package renderer set (set_package_renderer)")
        return self._renderer

    async def add_package(self, record: PackageRecord) -> None:
        _check_stored_package_state(record.state)
        _require_aware("created_at", record.created_at)
        _require_aware("updated_at", record.updated_at)
        values = _values(record)
        what = f"package {record.package_id!r}"
        _check_lengths(_P, values)
        with self._tracking(self._package_writes), _translate(what, table=_P, values=values):
            async with self._conn(write=True, savepoint=True) as conn:
                if self._renderer is None:
                    await conn.execute(_insert_into(_P), values)
                else:
                    # Rendered from the row as stored (PostgreSQL's JSONB orders keys).
                    row = (await conn.execute(_insert_package_statement(), values)).one()
                    await self._store_view(conn, _package(row))

    async def _store_view(
        self, conn: AsyncConnection | LoopConnection, record: PackageRecord
    ) -> None:
        """``record``'s view stored in its row, in the transaction that wrote the row."""
        render, key = self._views_renderer()
        head, tail = render(record)
        params = {"key": record.package_id, "new_head": head, "new_tail": tail, "new_key": key}
        await conn.execute(_store_view_statement(), params)

    async def get_package(self, package_id: str) -> PackageRecord | None:
        record, shared = await self._read_package(package_id)
        return _copy_package(record) if record is not None and shared else record

    async def read_package(self, package_id: str) -> PackageRecord | None:
        return (await self._read_package(package_id))[0]

    async def _read_package(self, package_id: str) -> tuple[PackageRecord | None, bool]:
        """The package, and whether it is the cached record itself, which the caller must
        not change."""
        writes = self._package_writes.counts()
        cached = self._packages.get(package_id)
        if cached is not None and cached[0] == writes:
            return cached[1], True
        row = await self._get_by("reading a package", _P, "package_id", package_id)
        if row is None:
            return None, False
        record = _package(row)
        if self.sole_writer and self._package_writes.counts() == writes:
            if len(self._packages) >= _MAX_CACHED_PACKAGES:
                self._packages.clear()  # bounded; refilled by the next reads
            self._packages[package_id] = (writes, _copy_package(record))
        return record, False

    async def find_package(self, name: str, version: str) -> PackageRecord | None:
        row = await self._get(
            "finding a package", _P, (_P.c.name == name) & (_P.c.version == version)
        )
        return None if row is None else _package(row)

    async def list_packages(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        package_type: str | None = None,
        adapter: str | None = None,
        state: PackageState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_P.c.name, name),
            (_P.c.version, version),
            (_P.c.package_type, package_type),
            (_P.c.adapter, adapter),
        ):
            if value is not None:
                conditions.append(column == value)
        if state is not None:
            state = _package_state(state)
            in_use = exists().where(_D.c.package_id == _P.c.package_id)
            if state is PackageState.IN_USE:
                conditions.append(in_use)
            else:
                # The state a client sees is IN_USE whenever a deployment uses the package,
                # so the other states select only unused packages in that stored state.
                conditions.extend((_P.c.state == state.value, ~in_use))
        return await self._page(
            "listing packages",
            _P,
            conditions,
            (_P.c.name, _P.c.version),
            _package,
            limit,
            offset,
        )

    async def update_package(self, package_id: str, **changes: Any) -> PackageRecord:
        values = _changes(PackageRecord, _P, changes, key="package_id")
        if "state" in values:
            values["state"] = _check_stored_package_state(values["state"]).value
        values.setdefault("updated_at", _now())
        if self._renderer is None:
            # No view of the new row: none of the old one kept either.
            values.update(dict.fromkeys(_VIEW_COLUMNS))
        what = f"package {package_id!r}"
        _check_lengths(_P, values)
        statement = _update_by(_P, "package_id", tuple(values))
        params = {f"new_{name}": change for name, change in values.items()}
        params["key"] = package_id
        with self._tracking(self._package_writes), _translate(what, table=_P, values=values):
            async with self._conn(write=True, savepoint=True) as conn:
                row = (await conn.execute(statement, params)).first()
                if row is None:
                    raise NotFound(f"{what}: not found")
                record = _package(row)
                if self._renderer is not None:
                    # The row stays locked by this transaction until the view is stored.
                    await self._store_view(conn, record)
        return record

    async def delete_package(self, package_id: str) -> None:
        with self._tracking(self._package_writes):
            await self._delete(f"package {package_id!r}", _P, _P.c.package_id == package_id)

    async def package_ids_in_use(self, package_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(package_ids))
        found: set[str] = set()
        with _translate("checking packages in use"):
            async with self._conn(write=False) as conn:
                for start in range(0, len(ids), _IN_CHUNK):
                    chunk = ids[start : start + _IN_CHUNK]
                    result = await conn.execute(
                        select(_D.c.package_id).where(_D.c.package_id.in_(chunk)).distinct()
                    )
                    found.update(result.scalars())
        return found

    async def package_backend_refs(self, adapter: str) -> set[str]:
        # One column, no record conversion: this runs over every package of an adapter (on
        # SQLite on the driver itself: through SQLAlchemy, 100 000 rows held the loop ~1 s).
        what = "reading package references"
        statement = _package_refs_statement()
        rows = self._driver_rows(what, statement, {"adapter": adapter})
        if rows is not None:
            return {row[0] for row in rows}
        with _translate(what):
            async with self._conn(write=False) as conn:
                result = await conn.execute(statement, {"adapter": adapter})
                return set(result.scalars())

    async def package_view(self, package_id: str) -> tuple[PackageRecord, bool] | None:
        """A package and whether a deployment uses it (``IN_USE``), in one statement."""
        views = await self._views(
            "reading a package", _package_view_statement(), {"key": package_id}
        )
        return views[0] if views else None

    async def package_view_json(self, package_id: str) -> bytes | None:
        """A package's view from its row (one small read: no record, no rendering); rendered
        from the record when the row has no fresh view."""
        render, key = self._views_renderer()
        rows = await self._rows(
            "reading a package", _package_json_statement(), {"key": package_id, "view_key": key}
        )
        if not rows:
            return None
        state, head, tail, fresh, in_use = rows[0]
        if fresh:
            return _item(head, tail, state, in_use)
        self._backfill_soon()
        view = await self.package_view(package_id)
        if view is None:
            return None
        record, in_use = view
        head, tail = render(record)
        return _item(head, tail, record.state.value, in_use)

    async def _views(
        self, what: str, statement: Select[Any], params: Mapping[str, Any]
    ) -> list[tuple[PackageRecord, bool]]:
        """Package views of ``statement``'s rows. On the SQLite reader (see ``_read``) the
        statement compiled once runs on the driver itself: SQLAlchemy's per-statement work
        (cache key, execution context, result processing) was most of a point read."""
        convert = _SQLITE_PACKAGE_ROW
        rows = self._driver_rows(what, statement, params) if convert is not None else None
        if rows is None or convert is None:
            return [_package_view(row) for row in await self._read(what, statement, params)]
        return [convert(row) for row in rows]

    @overload
    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        rendered: Literal[False] = False,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool]: ...

    @overload
    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        rendered: Literal[True],
    ) -> tuple[RenderedPage, bool]: ...

    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        rendered: bool = False,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool] | tuple[RenderedPage, bool]:
        """A page of packages in (name, version) order, each with whether it is in use, and
        whether more follow: ``offset`` rows skipped after the (name, version) ``after``
        (keyset: the index finds the start, so a deep page costs what the first one does).

        ``rendered``: the page as each view's JSON, read from the views stored in the rows
        with each row's state and IN_USE — one read, no record conversion, no rendering. A
        row without a fresh view has the page read again whole, that row rendered from its
        record (and the background pass started)."""
        limit, offset = _page_bounds(limit, offset)
        names, kind, params = _view_params(equal, state)
        _, statement, stored = _package_view_statements(names, kind, after is not None)
        # One row more than the page says whether another follows, without a count.
        params.update(page_limit=limit + 1, page_offset=offset)
        if after is not None:
            params.update(after_name=after[0], after_version=after[1])
        if not rendered:
            params["view_key"] = self._renderer[1] if self._renderer is not None else ""
            views = await self._views("listing packages", statement, params)
            return views[:limit], len(views) > limit
        params["view_key"] = self._views_renderer()[1]
        joined = self._driver_rows(
            "listing packages", _sqlite_page_statement(names, kind, after is not None), params
        )
        if joined is not None:
            page = joined[:limit]
            bodies: list[bytes] = [row[0] for row in page]
            if None not in bodies:
                last = (page[-1][1], page[-1][2]) if page else None
                return RenderedPage(bodies, last), len(joined) > limit
        else:
            rows: Sequence[Sequence[Any]] = await self._read("listing packages", stored, params)
            stored_page = rows[:limit]
            bodies = []
            for _name, _version, row_state, head, tail, fresh, in_use in stored_page:
                if not fresh:
                    break
                bodies.append(_item(head, tail, row_state, in_use))
            else:
                last = (stored_page[-1][0], stored_page[-1][1]) if stored_page else None
                return RenderedPage(bodies, last), len(rows) > limit
        self._backfill_soon()
        return await self._render_page(statement, params, limit)

    async def _rows(
        self, what: str, statement: Select[Any], params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """Raw rows on the SQLite reader's driver (see ``_views``), else through SQLAlchemy."""
        rows = self._driver_rows(what, statement, params)
        if rows is not None:
            return rows
        return await self._read(what, statement, params)

    async def _render_page(
        self, statement: Select[Any], params: Mapping[str, Any], limit: int
    ) -> tuple[RenderedPage, bool]:
        """``statement``'s page (records with their stored views), each item from its stored
        view when fresh, else rendered from the record."""
        what = "listing packages"
        render, _ = self._views_renderer()
        convert = _SQLITE_PACKAGE_ROW
        raw = self._driver_rows(what, statement, params) if convert is not None else None
        rows: Sequence[Sequence[Any]] = (
            raw if raw is not None else await self._read(what, statement, params)
        )
        bodies: list[bytes] = []
        for row in rows[:limit]:
            head, tail, fresh, in_use = tuple(row[_HEAD_AT:])
            if not fresh:
                record = (
                    convert(row)[0]
                    if raw is not None and convert is not None
                    else _package(cast("Row[Any]", row))
                )
                head, tail = render(record)
            bodies.append(_item(head, tail, row[_STATE_AT], in_use))
        page = rows[:limit]
        last = (page[-1][1], page[-1][2]) if page else None
        return RenderedPage(bodies, last), len(rows) > limit

    def _backfill_soon(self) -> None:
        """Start the background pass that stores the missing views, unless one runs or one
        ended less than ``_BACKFILL_INTERVAL_S`` ago (rows it could not fill then, such as
        those another writer held, wait for the next)."""
        running = self._backfill
        if running is not None and not running.done():
            return
        if time.monotonic() - self._backfill_ended < _BACKFILL_INTERVAL_S:
            return
        # A context of its own: not the caller's transaction (``_current``).
        self._backfill = asyncio.get_running_loop().create_task(
            self._fill_views(), name="netweave-package-views", context=contextvars.Context()
        )
        self._backfill.add_done_callback(self._backfill_done)

    def _backfill_done(self, task: asyncio.Task[int]) -> None:
        self._backfill_ended = time.monotonic()
        if not task.cancelled() and task.exception() is not None:
            _log.warning("storing package views failed: %s", task.exception())

    async def _fill_views(self) -> int:
        """Render and store the view of every row without a fresh one, in batches by id, each
        in a write transaction that locks the rows it reads (on SQLite: holds the one writer
        lock), so no view is stored of a row another writer changed meanwhile. Returns how
        many were stored."""
        render, key = self._views_renderer()
        after = ""
        stored = 0
        while True:
            async with self._transaction(), self._conn(write=True) as conn:
                rows = (
                    await conn.execute(
                        _unrendered_statement(),
                        {"after": after, "view_key": key, "batch": _BACKFILL_BATCH},
                    )
                ).all()
                if rows:
                    views = []
                    for row in rows:
                        record = _package(row)
                        head, tail = render(record)
                        views.append(
                            {
                                "key": record.package_id,
                                "new_head": head,
                                "new_tail": tail,
                                "new_key": key,
                            }
                        )
                    await conn.execute(_store_view_statement(), views)
            if not rows:
                return stored
            stored += len(rows)
            after = rows[-1].package_id
            await asyncio.sleep(_BACKFILL_PAUSE_S)

    async def fill_package_views(self) -> int:
        """Store every missing view now (the background pass, awaited; tests and tools)."""
        return await self._fill_views()

    async def _stop_backfill(self) -> None:
        task, self._backfill = self._backfill, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def count_packages(
        self, *, equal: Mapping[str, Any], state: PackageState | None = None
    ) -> int:
        """How many packages ``package_views`` pages through with these filters."""
        names, kind, params = _view_params(equal, state)
        # Kept on a store only this process writes, until its next package write; not with a
        # state filter, whose IN_USE rule reads deployments too.
        key = (names, tuple(params.values())) if self.sole_writer and kind is None else None
        writes = self._package_writes.counts()
        if key is not None:
            kept = self._package_counts.get(key)
            if kept is not None and kept[0] == writes:
                return kept[1]
        rows = await self._read(
            "counting packages", _package_view_statements(names, kind, False)[0], params
        )
        count = int(rows[0][0])
        if key is not None and self._package_writes.counts() == writes:
            if len(self._package_counts) >= _MAX_KEPT_COUNTS:
                self._package_counts.clear()  # bounded; refilled by the next lists
            self._package_counts[key] = (writes, count)
        return count

"""The native package repository of ``SqlStore``."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, Final, overload

import msgspec
from sqlalchemy import JSON, ColumnElement, Row, String, bindparam, exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from netweave.errors import InvalidInput
from netweave.models import PackageState
from netweave.store.engine import SqlBase, _translate
from netweave.store.records import PackageRecord, Page, RenderedPage
from netweave.store.records import RenderPackage as Render
from netweave.store.rows import (
    _D,
    _IN_CHUNK,
    _P,
    _changes,
    _enum,
    _now,
    _page_bounds,
    _paged,
    _require_aware,
    _values,
)
from netweave.store.sqlite_inline import LoopEngine
from netweave.store.tables import UTCDateTime

#: Packages kept by ``get_package`` on a store only this process writes.
_MAX_CACHED_PACKAGES: Final = 1024
#: Bytes of rendered packages ``package_views(render=…)`` keeps: about 35 000 packages of
#: ~450 bytes; past it the others are rendered each time they are listed. Not
#: the whole of a 100 000-package catalogue: that took 64 MB and ~70 MB of RSS, and the gateway
#: must stay under 300 MB there (issue 18; 316 MB measured with the whole catalogue kept).
_MAX_RENDERED_BYTES: Final = 16 * 1024 * 1024
#: Counts kept by ``count_packages`` on a store only this process writes (one per filter).
_MAX_KEPT_COUNTS: Final = 1024


_STORED_PACKAGE_STATES = frozenset(
    {PackageState.UPLOADED, PackageState.AVAILABLE, PackageState.DEPRECATED}
)


def _package(row: Row[Any]) -> PackageRecord:
    data = dict(row._mapping)
    data["state"] = PackageState(data["state"])
    return PackageRecord(**data)


def _copy_package(record: PackageRecord) -> PackageRecord:
    """A copy a caller may change without changing the cached one (records are mutable)."""
    return replace(record, extensions=copy.deepcopy(record.extensions))


#: What ``package_views``/``count_packages`` filter on by equality (keys of their ``equal``).
_PACKAGE_FILTERS: Final = ("name", "version", "package_type", "adapter")


def _package_in_use() -> ColumnElement[bool]:
    return exists().where(_D.c.package_id == _P.c.package_id)


@functools.lru_cache(maxsize=256)  # keyed by filter shapes: bounded all the same
def _package_view_statements(
    names: tuple[str, ...], state: str | None, keyset: bool
) -> tuple[Select[Any], Select[Any], Select[Any], Select[Any]]:
    """The count, the page of packages (each row with ``in_use``), the same page's row
    versions (see ``_STAMP_COLUMNS``) and its keys alone (id, name, version, ``in_use``),
    where each of ``names`` equals ``eq_<name>``; ``state`` ``"in_use"``/``"stored"`` adds
    the IN_USE rule (a stored state shows only while no deployment uses the package,
    ``eq_state``); ``keyset`` starts after (``after_name``, ``after_version``) in (name,
    version) order, on the unique index."""
    where: list[ColumnElement[bool]] = [_P.c[name] == bindparam(f"eq_{name}") for name in names]
    if state == "in_use":
        where.append(_package_in_use())
    elif state == "stored":
        where.extend((_P.c.state == bindparam("eq_state"), ~_package_in_use()))
    count = select(func.count()).select_from(_P).where(*where)
    if keyset:
        where.append(
            tuple_(_P.c.name, _P.c.version)
            > tuple_(
                bindparam("after_name", type_=String()), bindparam("after_version", type_=String())
            )
        )
    order = (_P.c.name, _P.c.version)
    in_use = _package_in_use().label("in_use")
    rows = _paged(select(_P, in_use).where(*where).order_by(*order))
    stamps = _paged(
        select(*(_P.c[name] for name in _STAMP_COLUMNS), in_use).where(*where).order_by(*order)
    )
    keys = _paged(
        select(_P.c.package_id, _P.c.name, _P.c.version, in_use).where(*where).order_by(*order)
    )
    return count, rows, stamps, keys


#: What a page's row-version read selects (then ``in_use``): the id, the marker's key, and
#: what changes whenever the row does — ``update_package`` always sets ``updated_at``, a
#: package deleted and added again has a new ``created_at``; IN_USE is read with it.
_STAMP_COLUMNS: Final = ("package_id", "name", "version", "state", "created_at", "updated_at")


@functools.cache
def _package_refs_statement() -> Select[Any]:
    return select(_P.c.backend_ref).where(_P.c.adapter == bindparam("adapter"))


@functools.cache
def _package_view_statement() -> Select[Any]:
    """One package by id with whether a deployment uses it (one statement, not two)."""
    return select(_P, _package_in_use().label("in_use")).where(_P.c.package_id == bindparam("key"))


def _package_view(row: Row[Any]) -> tuple[PackageRecord, bool]:
    data = dict(row._mapping)
    in_use = bool(data.pop("in_use"))
    data["state"] = PackageState(data["state"])
    return PackageRecord(**data), in_use


def _sqlite_package_row() -> Callable[[Sequence[Any]], tuple[PackageRecord, bool]] | None:
    """A converter of a raw ``sqlite3`` row of ``select(_P, in_use)`` into a package view,
    doing what SQLAlchemy's result processing does for these column types (SQLite keeps
    ``DateTime`` as ISO text, naive UTC, and JSON as text); ``None`` if a column has a type it
    does not know, and the store then reads through SQLAlchemy (a test compares both).

    A list page converts 100 rows per request, so the per-row work is kept small: JSON decoded
    by msgspec (the standard library's parser as the fallback for what msgspec refuses, such
    as NaN), times parsed with their offset, the state looked up in a dict, the record built
    positionally."""
    names: list[str] = []
    times: list[int] = []
    documents: list[int] = []
    state = -1
    for index, column in enumerate(_P.c):
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
        values = list(row)
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
        return PackageRecord(*[values[index] for index in order]), bool(values[-1])

    return convert


_SQLITE_PACKAGE_ROW: Final = _sqlite_package_row()


_COLUMN_NAMES: Final = [column.name for column in _P.c]
_STATE_AT: Final = _COLUMN_NAMES.index("state")
_CREATED_AT: Final = _COLUMN_NAMES.index("created_at")
_UPDATED_AT: Final = _COLUMN_NAMES.index("updated_at")


class _RenderMemo:
    """Rendered package views by id, bounded by the bytes it holds: past the bound nothing
    more is kept (what is kept stays; starting again empty made a catalogue larger than the
    bound re-render nearly every page: list p99 at 100 000 went from 61 to 550 ms). Each
    view is kept with what it was rendered from: on a sole writer only
    IN_USE (one dict each way, bodies alone: at 100 000 packages every byte counts), else
    the row's version."""

    __slots__ = ("in_use", "max_bytes", "size", "unused", "versioned")

    def __init__(self, max_bytes: int) -> None:
        self.unused: dict[str, bytes] = {}
        self.in_use: dict[str, bytes] = {}
        self.versioned: dict[str, tuple[bytes, bytes]] = {}
        self.max_bytes = max_bytes
        self.size = 0

    def get(self, package_id: str, version: bool | bytes) -> bytes | None:
        if version is True:
            return self.in_use.get(package_id)
        if version is False:
            return self.unused.get(package_id)
        entry = self.versioned.get(package_id)
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def drop(self, package_id: str) -> None:
        for bodies in (self.unused, self.in_use):
            body = bodies.pop(package_id, None)
            if body is not None:
                self.size -= len(body)
        entry = self.versioned.pop(package_id, None)
        if entry is not None:
            self.size -= len(entry[0]) + len(entry[1])

    def put(self, package_id: str, version: bool | bytes, body: bytes) -> None:
        self.drop(package_id)
        size = len(body) + (0 if isinstance(version, bool) else len(version))
        if self.size + size > self.max_bytes:
            return
        if version is True:
            self.in_use[package_id] = body
        elif version is False:
            self.unused[package_id] = body
        else:
            self.versioned[package_id] = (version, body)
        self.size += size


def _row_version(state: Any, created_at: Any, updated_at: Any, in_use: Any) -> bytes:
    """A row's version as the memo compares it: the driver's text on the SQLite reader,
    SQLAlchemy's values otherwise."""
    return f"{state}|{created_at}|{updated_at}|{bool(in_use):d}\n".encode()


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
    """Native packages (``packages``), with the read cache and the list views."""

    def __init__(self, engine: AsyncEngine | LoopEngine) -> None:
        super().__init__(engine)
        #: Per render function, the views ``package_views(render=…)`` rendered.
        self._render_memos: dict[Render, _RenderMemo] = {}
        #: Counts by filter, with the package write counts they were read under.
        self._package_counts: dict[Hashable, tuple[tuple[int, int], int]] = {}

    async def add_package(self, record: PackageRecord) -> None:
        _check_stored_package_state(record.state)
        _require_aware("created_at", record.created_at)
        _require_aware("updated_at", record.updated_at)
        with self._package_write(record.package_id):
            await self._insert(f"package {record.package_id!r}", _P, _values(record))

    @contextlib.contextmanager
    def _package_write(self, package_id: str) -> Iterator[None]:
        """A write of one package: counted (see ``_Writes``), and its rendered views
        forgotten once it has ended (inside a transaction: when the transaction has), so a
        view rendered from the row before the write cannot outlive it."""
        try:
            with self._tracking(self._package_writes):
                yield
        finally:
            enclosing = self._current.get() if self._joinable() is not None else None
            if enclosing is None:
                self._forget_rendered(package_id)
            else:
                enclosing.when_ended.append(functools.partial(self._forget_rendered, package_id))

    def _forget_rendered(self, package_id: str) -> None:
        for memo in self._render_memos.values():
            memo.drop(package_id)

    async def get_package(self, package_id: str) -> PackageRecord | None:
        writes = self._package_writes.counts()
        cached = self._packages.get(package_id)
        if cached is not None and cached[0] == writes:
            return _copy_package(cached[1])
        row = await self._get_by("reading a package", _P, "package_id", package_id)
        if row is None:
            return None
        record = _package(row)
        if self.sole_writer and self._package_writes.counts() == writes:
            if len(self._packages) >= _MAX_CACHED_PACKAGES:
                self._packages.clear()  # bounded; refilled by the next reads
            self._packages[package_id] = (writes, _copy_package(record))
        return record

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
        with self._package_write(package_id):
            row = await self._update(
                f"package {package_id!r}", _P, ("package_id", package_id), values
            )
        return _package(row)

    async def delete_package(self, package_id: str) -> None:
        with self._package_write(package_id):
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
        render: None = None,
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
        render: Render,
    ) -> tuple[RenderedPage, bool]: ...

    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        render: Render | None = None,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool] | tuple[RenderedPage, bool]:
        """A page of packages in (name, version) order, each with whether it is in use, and
        whether more follow: ``offset`` rows skipped after the (name, version) ``after``
        (keyset: the index finds the start, so a deep page costs what the first one does).

        With ``render``, the page comes as each view's ``render(record, in_use)`` bytes, kept
        per package with the row version it was rendered from: the page is then read as row
        versions only (id, key, state, times, IN_USE), and the rows are read whole and
        rendered only when one of them is new or changed since — a page of known packages
        costs no record conversion and no rendering, and is exactly as current as the rows."""
        limit, offset = _page_bounds(limit, offset)
        names, kind, params = _view_params(equal, state)
        _, statement, stamps, keys = _package_view_statements(names, kind, after is not None)
        # One row more than the page says whether another follows, without a count.
        params.update(page_limit=limit + 1, page_offset=offset)
        if after is not None:
            params.update(after_name=after[0], after_version=after[1])
        if render is None:
            views = await self._views("listing packages", statement, params)
            return views[:limit], len(views) > limit
        memo = self._render_memo(render)
        # A store only this process writes forgets a package's views when it writes the
        # package (``_package_write``): its page is read as keys and IN_USE alone. Otherwise
        # (replicas on PostgreSQL, or inside a transaction) with each row's version.
        sole = self.sole_writer and self._joinable() is None
        writes = self._package_writes.counts()
        rows = await self._rows("listing packages", keys if sole else stamps, params)
        page = rows[:limit]
        bodies: list[bytes] = []
        for row in page:
            # On a sole writer a row's version is its IN_USE (its writes forget its view).
            version = bool(row[-1]) if sole else _row_version(*row[3:])
            body = memo.get(row[0], version)
            if body is None:
                break
            bodies.append(body)
        else:
            last = (page[-1][1], page[-1][2]) if page else None
            return RenderedPage(bodies, last), len(rows) > limit
        # A package new to the memo or changed since: the page is read whole and rendered.
        return await self._render_views(statement, params, memo, render, sole=sole, writes=writes)

    def _render_memo(self, render: Render) -> _RenderMemo:
        memo = self._render_memos.get(render)
        if memo is None:
            if len(self._render_memos) >= 4:
                self._render_memos.clear()  # one render function in practice; bounded anyway
            memo = self._render_memos[render] = _RenderMemo(_MAX_RENDERED_BYTES)
        return memo

    async def _rows(
        self, what: str, statement: Select[Any], params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """Raw rows on the SQLite reader's driver (see ``_views``), else through SQLAlchemy."""
        rows = self._driver_rows(what, statement, params)
        if rows is not None:
            return rows
        return await self._read(what, statement, params)

    async def _render_views(
        self,
        statement: Select[Any],
        params: Mapping[str, Any],
        memo: _RenderMemo,
        render: Render,
        *,
        sole: bool,
        writes: tuple[int, int],
    ) -> tuple[RenderedPage, bool]:
        """``statement``'s page rendered, each view kept in ``memo`` under the version the
        page's first read compares (``package_views``): IN_USE alone on a sole writer, else
        the row's version in the form that read gives it (the driver's text on the SQLite
        reader, SQLAlchemy's values otherwise, so the two never match each other). Nothing
        is kept if a package write ended meanwhile (it may have forgotten these rows)."""
        what = "listing packages"
        limit = params["page_limit"] - 1
        convert = _SQLITE_PACKAGE_ROW
        raw = self._driver_rows(what, statement, params) if convert is not None else None
        views: list[tuple[PackageRecord, bool]]
        versions: list[bool | bytes]
        if raw is None or convert is None:
            views = [_package_view(row) for row in await self._read(what, statement, params)]
            versions = [
                in_use
                if sole
                else _row_version(record.state.value, record.created_at, record.updated_at, in_use)
                for record, in_use in views[:limit]
            ]
        else:
            views = [convert(row) for row in raw]
            versions = [
                bool(row[-1])
                if sole
                else _row_version(row[_STATE_AT], row[_CREATED_AT], row[_UPDATED_AT], row[-1])
                for row in raw[:limit]
            ]
        keep = self._package_writes.counts() == writes
        bodies: list[bytes] = []
        for (record, in_use), version in zip(views, versions, strict=False):
            body = render(record, in_use)
            if keep:
                memo.put(record.package_id, version, body)
            bodies.append(body)
        page = views[:limit]
        last = (page[-1][0].name, page[-1][0].version) if page else None
        return RenderedPage(bodies, last), len(views) > limit

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

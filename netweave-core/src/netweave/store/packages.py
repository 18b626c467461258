"""The native package repository of ``SqlStore``."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import JSON, ColumnElement, Row, String, bindparam, exists, func, select, tuple_
from sqlalchemy.sql import Select

from netweave.errors import InvalidInput
from netweave.models import PackageState
from netweave.store.engine import SqlBase, _translate
from netweave.store.records import PackageRecord, Page
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
from netweave.store.tables import UTCDateTime

#: Packages kept by ``get_package`` on a store only this process writes.
_MAX_CACHED_PACKAGES: Final = 1024


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
) -> tuple[Select[Any], Select[Any]]:
    """The count and the page of packages (each row with ``in_use``) where each of ``names``
    equals ``eq_<name>``; ``state`` ``"in_use"``/``"stored"`` adds the IN_USE rule (a stored
    state shows only while no deployment uses the package, ``eq_state``); ``keyset`` starts
    after (``after_name``, ``after_version``) in (name, version) order, on the unique index."""
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
    rows = _paged(
        select(_P, _package_in_use().label("in_use"))
        .where(*where)
        .order_by(_P.c.name, _P.c.version)
    )
    return count, rows


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

    async def add_package(self, record: PackageRecord) -> None:
        _check_stored_package_state(record.state)
        _require_aware("created_at", record.created_at)
        _require_aware("updated_at", record.updated_at)
        with self._tracking(self._package_writes):
            await self._insert(f"package {record.package_id!r}", _P, _values(record))

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
        with self._tracking(self._package_writes):
            row = await self._update(
                f"package {package_id!r}", _P, ("package_id", package_id), values
            )
        return _package(row)

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

    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool]:
        """A page of packages in (name, version) order, each with whether it is in use, and
        whether more follow: ``offset`` rows skipped after the (name, version) ``after``
        (keyset: the index finds the start, so a deep page costs what the first one does)."""
        limit, offset = _page_bounds(limit, offset)
        names, kind, params = _view_params(equal, state)
        statement = _package_view_statements(names, kind, after is not None)[1]
        # One row more than the page says whether another follows, without a count.
        params.update(page_limit=limit + 1, page_offset=offset)
        if after is not None:
            params.update(after_name=after[0], after_version=after[1])
        views = await self._views("listing packages", statement, params)
        return views[:limit], len(views) > limit

    async def count_packages(
        self, *, equal: Mapping[str, Any], state: PackageState | None = None
    ) -> int:
        """How many packages ``package_views`` pages through with these filters."""
        names, kind, params = _view_params(equal, state)
        rows = await self._read(
            "counting packages", _package_view_statements(names, kind, False)[0], params
        )
        return int(rows[0][0])

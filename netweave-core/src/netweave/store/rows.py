"""Helpers every repository of ``SqlStore`` shares: the tables as Core ``Table`` objects, record
conversion, paging bounds, statement builders and change checks.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert, ReturningUpdate

from netweave.errors import InvalidInput
from netweave.store.interface import MAX_PAGE_LIMIT
from netweave.store.tables import (
    ApiTokenRow,
    DeploymentRow,
    IdempotencyRow,
    OperationRow,
    PackageRow,
    ReconcileShardRow,
    SubscriptionRow,
    UTCDateTime,
)

#: Offsets beyond this cannot be a real position and would overflow a 64-bit integer.
MAX_OFFSET: Final = 2**62


# Bound for "IN (...)" lists: both drivers cap bound parameters per statement.
_IN_CHUNK = 1000


_P = cast(Table, PackageRow.__table__)


_D = cast(Table, DeploymentRow.__table__)


_O = cast(Table, OperationRow.__table__)


_R = cast(Table, ReconcileShardRow.__table__)


_S = cast(Table, SubscriptionRow.__table__)


_I = cast(Table, IdempotencyRow.__table__)


_T = cast(Table, ApiTokenRow.__table__)


_E = TypeVar("_E", bound=enum.Enum)


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(value: Any) -> Any:
    """Enums as their string values (columns are plain strings)."""
    return value.value if isinstance(value, enum.Enum) else value


def _values(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record)}


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime", details={"field": name})


def _page_bounds(limit: int, offset: int) -> tuple[int, int]:
    for name, value, upper in (("limit", limit, MAX_PAGE_LIMIT), ("offset", offset, MAX_OFFSET)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be an integer", details={"field": name})
        if value < 0 or value > upper:
            raise InvalidInput(
                f"{name} must be between 0 and {upper}, got {value}",
                details={"field": name, "value": value},
            )
    return limit, offset


@functools.cache
def _insert_into(table: Table) -> Insert:
    return insert(table)


@functools.cache
def _select_by(table: Table, column: str) -> Select[Any]:
    return select(table).where(table.c[column] == bindparam("key"))


@functools.lru_cache(maxsize=256)  # keyed by column sets: bounded all the same
def _update_by(table: Table, column: str, names: tuple[str, ...]) -> ReturningUpdate[Any]:
    # Bound parameters may not share a name with a column the statement sets.
    return (
        update(table)
        .where(table.c[column] == bindparam("key"))
        .values({name: bindparam(f"new_{name}") for name in names})
        .returning(*table.c)
    )


def _paged(rows: Select[Any]) -> Select[Any]:
    """``rows`` limited to the bound ``page_limit`` rows from ``page_offset`` on."""
    return rows.limit(bindparam("page_limit")).offset(bindparam("page_offset"))


@functools.lru_cache(maxsize=256)  # keyed by column sets: bounded all the same
def _page_statements(
    table: Table, names: tuple[str, ...], order: tuple[str, ...]
) -> tuple[Select[Any], Select[Any]]:
    """A list's count and rows (in ``order``) where each of ``names`` equals its parameter
    ``eq_<name>``."""
    where = [table.c[name] == bindparam(f"eq_{name}") for name in names]
    return (
        select(func.count()).select_from(table).where(*where),
        _paged(select(table).where(*where).order_by(*(table.c[name] for name in order))),
    )


def _enum(kind: type[_E], name: str, value: Any) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(
            f"{name} {value!r} is not one of {[m.value for m in kind]}", details={"field": name}
        ) from None


def _changes(
    record_type: type[Any], table: Table, changes: dict[str, Any], *, key: str
) -> dict[str, Any]:
    allowed = {f.name for f in fields(record_type)} - {key}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(
            f"cannot change {', '.join(unknown)} of a {record_type.__name__}",
            details={"fields": unknown},
        )
    values = {name: _plain(value) for name, value in changes.items()}
    for name, value in values.items():
        column = table.c[name]
        if value is None and not column.nullable:
            raise InvalidInput(f"{name} cannot be null", details={"field": name})
        if isinstance(column.type, UTCDateTime) and value is not None:
            _require_aware(name, value)
    return values


def _check_lengths(table: Table, values: Mapping[str, Any]) -> None:
    """Refuse strings longer than their column on every backend (SQLite would store them)."""
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        length = getattr(table.c[name].type, "length", None)
        if length is not None and len(value) > length:
            raise InvalidInput(
                f"{name} is longer than {length} characters",
                details={"field": name, "maxLength": length},
            )


def _check_lease(owner: str, lease_seconds: float) -> None:
    if not owner:
        raise InvalidInput("lease owner must not be empty", details={"field": "owner"})
    if not 0 <= lease_seconds <= 366 * 24 * 3600:
        raise InvalidInput(
            f"lease_seconds must be between 0 and a year, got {lease_seconds}",
            details={"field": "lease_seconds"},
        )

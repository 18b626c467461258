"""The operation-occurrence repository of ``SqlStore``: state changes, claims under a lease."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, case, or_, select, update
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import ReturningUpdate

from netweave.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from netweave.models import OperationState, OperationType
from netweave.models.operations import CLAIMABLE_STATES, TERMINAL_STATES
from netweave.store.engine import SqlBase, _translate
from netweave.store.interface import MAX_PAGE_LIMIT
from netweave.store.records import OperationRecord, Page
from netweave.store.rows import (
    _IN_CHUNK,
    _O,
    _changes,
    _check_lease,
    _enum,
    _now,
    _plain,
    _require_aware,
    _values,
)
from netweave.store.tables import UTCDateTime

_CLAIMABLE_OPERATION_STATES = tuple(sorted(s.value for s in CLAIMABLE_STATES))


_TERMINAL_OPERATION_STATES = tuple(sorted(s.value for s in TERMINAL_STATES))


def _operation(row: Row[Any]) -> OperationRecord:
    data = dict(row._mapping)
    data["state"] = OperationState(data["state"])
    data["operation_type"] = OperationType(data["operation_type"])
    return OperationRecord(**data)


@functools.lru_cache(maxsize=256)
def _update_operation(
    names: tuple[str, ...], *, clock: bool, expected: bool
) -> ReturningUpdate[Any] | Select[Any]:
    """``update_operation``'s statement: set ``names``; with ``clock``, restart
    ``state_entered_time`` when the state really changes; with ``expected``, only from that
    state. Nothing to set: a plain read under the same condition."""
    where = _O.c.operation_id == bindparam("key")
    if expected:
        where = where & (_O.c.state == bindparam("expected"))
    if not names:
        return select(_O).where(where)
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
    if clock:
        values["state_entered_time"] = case(
            (_O.c.state != bindparam("to_state"), bindparam("entered_at", type_=UTCDateTime())),
            else_=_O.c.state_entered_time,
        )
    return update(_O).where(where).values(values).returning(*_O.c)


@functools.cache
def _claim_statements() -> tuple[Select[Any], ReturningUpdate[Any]]:
    """``claim_operations``' statements: the claimable operations' ids (oldest first, at most
    ``limit``), then the lease taken on those still claimable."""
    now = bindparam("now", type_=UTCDateTime())
    claimable = (_O.c.state.in_(_CLAIMABLE_OPERATION_STATES)) & or_(
        _O.c.lease_expires_at.is_(None), _O.c.lease_expires_at <= now
    )
    find = (
        select(_O.c.operation_id)
        .where(claimable)
        .order_by(_O.c.start_time, _O.c.operation_id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    take = (
        update(_O)
        .where(_O.c.operation_id.in_(bindparam("ids", expanding=True)), claimable)
        .values(
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("until", type_=UTCDateTime()),
        )
        .returning(*_O.c)
    )
    return find, take


class OperationRows(SqlBase):
    """Operation occurrences (``operations``): writes, claims and leases."""

    async def add_operation(self, record: OperationRecord) -> None:
        _require_aware("start_time", record.start_time)
        _require_aware("state_entered_time", record.state_entered_time)
        values = _values(record)
        try:
            await self._insert(f"operation {record.operation_id!r}", _O, values)
        except AlreadyExists as error:
            if not error.details.get("key", "").startswith("deployment_id="):
                raise
            raise AlreadyExists(
                f"deployment {record.deployment_id!r} already has an unfinished operation",
                details={"deploymentId": record.deployment_id},
            ) from error

    async def get_operation(self, operation_id: str) -> OperationRecord | None:
        row = await self._get_by("reading an operation", _O, "operation_id", operation_id)
        return None if row is None else _operation(row)

    async def list_operations(
        self,
        *,
        deployment_id: str | None = None,
        state: OperationState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        return await self._page_where_equal(
            "listing operations",
            _O,
            {"deployment_id": deployment_id, "state": _plain(state)},
            ("start_time", "operation_id"),
            _operation,
            limit,
            offset,
        )

    async def update_operation(
        self,
        operation_id: str,
        *,
        expected_state: OperationState | None = None,
        **changes: Any,
    ) -> OperationRecord:
        what = f"operation {operation_id!r}"
        values: dict[str, Any] = _changes(OperationRecord, _O, changes, key="operation_id")
        if "operation_type" in values:
            values["operation_type"] = _enum(
                OperationType, "operation_type", values["operation_type"]
            ).value
        if "state" in values:
            new_state = _enum(OperationState, "state", values["state"]).value
            values["state"] = new_state
            if new_state in _TERMINAL_OPERATION_STATES:
                # A terminal operation is never claimed again: its lease goes in the same
                # write, so the worker need not release it in a write of its own.
                values.setdefault("lease_owner", None)
                values.setdefault("lease_expires_at", None)
        # Only a real transition restarts the clock; decided in SQL, atomically.
        clock = "state" in values and "state_entered_time" not in values
        expected = (
            None
            if expected_state is None
            else _enum(OperationState, "expected_state", expected_state)
        )
        params = {f"new_{name}": value for name, value in values.items()}
        params["key"] = operation_id
        if clock:
            params["entered_at"] = _now()
            params["to_state"] = values["state"]
        if expected is not None:
            params["expected"] = expected.value
        stmt = _update_operation(tuple(values), clock=clock, expected=expected is not None)
        with _translate(what, table=_O, values=values):
            async with self._conn(write=True, savepoint=True) as conn:
                row = (await conn.execute(stmt, params)).first()
                if row is None:
                    actual = (
                        await conn.execute(
                            select(_O.c.state).where(_O.c.operation_id == operation_id)
                        )
                    ).scalar_one_or_none()
        if row is not None:
            return _operation(row)
        if actual is None:
            raise NotFound(f"{what}: not found")
        assert expected is not None  # without it, an existing row is always updated
        raise Conflict(
            f"{what} is {actual}, expected {expected.value}",
            details={"operationId": operation_id, "state": actual, "expected": expected.value},
        )

    async def claim_operations(
        self, *, owner: str, lease_seconds: float, limit: int, now: datetime
    ) -> list[OperationRecord]:
        _require_aware("now", now)
        _check_lease(owner, lease_seconds)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInput("limit must be a non-negative integer", details={"field": "limit"})
        if limit == 0:
            return []
        until = now + timedelta(seconds=lease_seconds)
        find, take = _claim_statements()
        with _translate("claiming operations"):
            async with self._conn(write=True) as conn:
                # PostgreSQL: rows another claimer holds are skipped, not waited for. SQLite
                # ignores FOR UPDATE; there the write lock (BEGIN IMMEDIATE) makes the
                # select-then-update atomic.
                found = await conn.execute(find, {"now": now, "limit": min(limit, MAX_PAGE_LIMIT)})
                ids = list(found.scalars())
                if not ids:
                    return []
                rows = await conn.execute(
                    take, {"ids": ids, "now": now, "owner": owner, "until": until}
                )
                claimed = [_operation(row) for row in rows]
        claimed.sort(key=lambda op: (op.start_time, op.operation_id))
        return claimed

    async def renew_lease(
        self, operation_id: str, *, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        _require_aware("now", now)
        _check_lease(owner, lease_seconds)
        with _translate(f"renewing the lease of operation {operation_id!r}"):
            async with self._conn(write=True) as conn:
                result = await conn.execute(
                    update(_O)
                    .where(_O.c.operation_id == operation_id, _O.c.lease_owner == owner)
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                )
        return bool(result.rowcount)

    async def release_lease(self, operation_id: str, *, owner: str) -> None:
        with _translate(f"releasing the lease of operation {operation_id!r}"):
            async with self._conn(write=True) as conn:
                await conn.execute(
                    update(_O)
                    .where(_O.c.operation_id == operation_id, _O.c.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )

    async def busy_deployments(self, deployment_ids: Sequence[str]) -> set[str]:
        busy: set[str] = set()
        ids = list(dict.fromkeys(deployment_ids))
        with _translate("reading the active operations"):
            async with self._conn(write=False) as conn:
                for start in range(0, len(ids), _IN_CHUNK):
                    rows = await conn.execute(
                        select(_O.c.deployment_id)
                        .where(
                            _O.c.deployment_id.in_(ids[start : start + _IN_CHUNK]),
                            _O.c.state.not_in(_TERMINAL_OPERATION_STATES),
                        )
                        .distinct()
                    )
                    busy.update(str(row[0]) for row in rows)
        return busy

    async def active_operation_for(self, deployment_id: str) -> OperationRecord | None:
        with _translate("reading the active operation"):
            async with self._conn(write=False) as conn:
                row = (
                    await conn.execute(
                        select(_O)
                        .where(
                            _O.c.deployment_id == deployment_id,
                            _O.c.state.not_in(_TERMINAL_OPERATION_STATES),
                        )
                        .order_by(_O.c.start_time, _O.c.operation_id)
                        .limit(1)
                    )
                ).first()
        return None if row is None else _operation(row)

"""The notification outbox on :class:`~netweave.store.sql.SqlStore`: events and their deliveries.

An event is one ``outbox`` row (its ``event_id`` is the de-duplication id every subscriber
sees); each subscription it matched gets a ``notification_deliveries`` row, retried and claimed
on its own, so one dead callback never holds up or duplicates another subscriber's stream.

Claiming (several replicas on one PostgreSQL): due, unleased PENDING deliveries whose
subscription has no earlier PENDING delivery with the same ordering key (a deployment), locked
with ``FOR UPDATE SKIP LOCKED`` and leased to the caller. So a subscription's events about one
deployment go out one at a time, in order, each by one replica; a dead replica's lease expires
and another takes the delivery over (at least once: subscribers de-duplicate by event id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, and_, delete, exists, func, insert, or_, select, update

from netweave.errors import InvalidInput
from netweave.store.engine import _translate
from netweave.store.sql import SqlStore
from netweave.store.tables import DeliveryRow, OutboxRow

PENDING: Final = "PENDING"
DELIVERED: Final = "DELIVERED"
FAILED: Final = "FAILED"

_X = cast(Table, OutboxRow.__table__)
_N = cast(Table, DeliveryRow.__table__)
#: Bound on one claim and on ``IN`` lists.
MAX_CLAIM: Final = 500


@dataclass(slots=True)
class Delivery:
    """A claimed delivery with the event it carries."""

    id: int
    event_id: str
    subscription_id: str
    ordering_key: str | None
    occurred_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    event_type: str
    payload: dict[str, Any]
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to record: its outbox row and the subscriptions it goes to."""

    event_id: str
    event_type: str
    payload: Mapping[str, Any]
    occurred_at: datetime
    ordering_key: str | None
    subscription_ids: Sequence[str]


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime", details={"field": name})


class OutboxStore:
    """Outbox operations on a :class:`SqlStore` (joins its ``transaction()`` when inside one)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    @property
    def store(self) -> SqlStore:
        return self._store

    async def record_event(
        self,
        *,
        event_id: str,
        event_type: str,
        payload: Mapping[str, Any],
        occurred_at: datetime,
        ordering_key: str | None,
        subscription_ids: Sequence[str],
        due_at: datetime,
        now: datetime,
    ) -> None:
        """One outbox row plus one PENDING delivery per subscription, atomically."""
        event = NewEvent(event_id, event_type, payload, occurred_at, ordering_key, subscription_ids)
        await self.record_events([event], due_at=due_at, now=now)

    async def record_events(
        self, events: Sequence[NewEvent], *, due_at: datetime, now: datetime
    ) -> None:
        """Several events (one change's) in two statements; inside the caller's transaction
        when there is one, so they commit or roll back with the change they report."""
        _aware("due_at", due_at)
        _aware("now", now)
        if not events:
            return
        outbox_rows: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for new in events:
            _aware("occurred_at", new.occurred_at)
            outbox_rows.append(
                {
                    "event_id": new.event_id,
                    "event_type": new.event_type,
                    "payload": dict(new.payload),
                    "created_at": now,
                    "state": PENDING if new.subscription_ids else DELIVERED,
                    "attempts": 0,
                    "next_attempt_at": due_at,
                }
            )
            # Rows in the order given: ``id`` breaks ties of ``occurred_at`` in the claim.
            rows.extend(
                {
                    "event_id": new.event_id,
                    "subscription_id": subscription_id,
                    "ordering_key": new.ordering_key,
                    "occurred_at": new.occurred_at,
                    "state": PENDING,
                    "attempts": 0,
                    "next_attempt_at": due_at,
                }
                for subscription_id in dict.fromkeys(new.subscription_ids)
            )
        what = f"outbox event {events[0].event_id!r}" + (
            f" and {len(events) - 1} more" if len(events) > 1 else ""
        )
        with _translate(what, table=_X, values=outbox_rows[0]):
            async with self._store._conn(write=True) as conn:
                await conn.execute(insert(_X), outbox_rows)
                if rows:
                    await conn.execute(insert(_N), rows)

    async def claim(
        self, *, owner: str, lease_seconds: float, limit: int, now: datetime
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries (see the module docstring); counts an attempt."""
        _aware("now", now)
        if not owner or lease_seconds <= 0:
            raise InvalidInput("a claim needs an owner and a positive lease")
        limit = max(0, min(limit, MAX_CLAIM))
        if limit == 0:
            return []
        earlier = _N.alias("earlier")
        claimable = and_(
            _N.c.state == PENDING,
            or_(_N.c.lease_expires_at.is_(None), _N.c.lease_expires_at <= now),
        )
        blocked = exists().where(
            earlier.c.subscription_id == _N.c.subscription_id,
            earlier.c.ordering_key == _N.c.ordering_key,
            earlier.c.state == PENDING,
            or_(
                earlier.c.occurred_at < _N.c.occurred_at,
                and_(earlier.c.occurred_at == _N.c.occurred_at, earlier.c.id < _N.c.id),
            ),
        )
        with _translate("claiming notification deliveries"):
            # A read first: idle polls must not take SQLite's write lock (or a PostgreSQL
            # write transaction) every poll interval on every replica.
            async with self._store._conn(write=False) as conn:
                due = (
                    await conn.execute(
                        select(_N.c.id)
                        .where(_N.c.state == PENDING, _N.c.next_attempt_at <= now)
                        .limit(1)
                    )
                ).first()
            if due is None:
                return []
            async with self._store._conn(write=True) as conn:
                # PostgreSQL skips rows another replica holds; SQLite has no row locks, its
                # write lock (BEGIN IMMEDIATE) makes select-then-update atomic instead.
                ids = list(
                    (
                        await conn.execute(
                            select(_N.c.id)
                            .where(claimable, _N.c.next_attempt_at <= now, ~blocked)
                            .order_by(_N.c.occurred_at, _N.c.id)
                            .limit(limit)
                            .with_for_update(skip_locked=True, of=_N)
                        )
                    ).scalars()
                )
                if not ids:
                    return []
                claimed = (
                    await conn.execute(
                        update(_N)
                        .where(_N.c.id.in_(ids), claimable)
                        .values(
                            lease_owner=owner,
                            lease_expires_at=now + timedelta(seconds=lease_seconds),
                            attempts=_N.c.attempts + 1,
                        )
                        .returning(*_N.c)
                    )
                ).all()
                event_ids = {row.event_id for row in claimed}
                events = {
                    row.event_id: row
                    for row in await conn.execute(
                        select(_X.c.event_id, _X.c.event_type, _X.c.payload).where(
                            _X.c.event_id.in_(event_ids)
                        )
                    )
                }
        out = []
        for row in claimed:
            event = events.get(row.event_id)
            if event is None:
                continue  # purged meanwhile
            out.append(
                Delivery(**row._mapping, event_type=event.event_type, payload=dict(event.payload))
            )
        out.sort(key=lambda d: (d.occurred_at, d.id))
        return out

    async def delivered(self, delivery_id: int, *, now: datetime) -> None:
        await self._finish(delivery_id, DELIVERED, None, now)

    async def failed(self, delivery_id: int, *, error: str, now: datetime) -> None:
        await self._finish(delivery_id, FAILED, error[:2000], now)

    async def reschedule(
        self, delivery_id: int, *, owner: str, next_attempt_at: datetime, error: str
    ) -> bool:
        """Back off: due again at ``next_attempt_at``, lease released. False if we lost it."""
        _aware("next_attempt_at", next_attempt_at)
        with _translate("rescheduling a notification delivery"):
            async with self._store._conn(write=True) as conn:
                result = await conn.execute(
                    update(_N)
                    .where(_N.c.id == delivery_id, _N.c.lease_owner == owner, _N.c.state == PENDING)
                    .values(
                        next_attempt_at=next_attempt_at,
                        lease_owner=None,
                        lease_expires_at=None,
                        last_error=error[:2000],
                    )
                )
        return bool(result.rowcount)

    async def _finish(self, delivery_id: int, state: str, error: str | None, now: datetime) -> None:
        _aware("now", now)
        with _translate("finishing a notification delivery"):
            async with self._store._conn(write=True) as conn:
                row = (
                    await conn.execute(
                        update(_N)
                        .where(_N.c.id == delivery_id, _N.c.state == PENDING)
                        .values(
                            state=state,
                            lease_owner=None,
                            lease_expires_at=None,
                            last_error=error,
                            delivered_at=now if state == DELIVERED else None,
                        )
                        .returning(_N.c.event_id)
                    )
                ).first()
                if row is None:
                    return
                # The event is done when none of its deliveries is pending any more.
                others = select(_N.c.state).where(_N.c.event_id == row.event_id)
                states = set((await conn.execute(others)).scalars())
                if PENDING not in states:
                    await conn.execute(
                        update(_X)
                        .where(_X.c.event_id == row.event_id)
                        .values(
                            state=FAILED if FAILED in states else DELIVERED,
                            delivered_at=now,
                        )
                    )

    async def deliveries(
        self,
        *,
        event_id: str | None = None,
        subscription_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Delivery rows (oldest first), for tests and operators."""
        conditions = []
        if event_id is not None:
            conditions.append(_N.c.event_id == event_id)
        if subscription_id is not None:
            conditions.append(_N.c.subscription_id == subscription_id)
        if state is not None:
            conditions.append(_N.c.state == state)
        with _translate("listing notification deliveries"):
            async with self._store._conn(write=False) as conn:
                rows = await conn.execute(
                    select(_N)
                    .where(*conditions)
                    .order_by(_N.c.occurred_at, _N.c.id)
                    .limit(max(1, min(limit, MAX_CLAIM * 20)))
                )
                return [dict(r._mapping) for r in rows]

    async def count_pending(self) -> int:
        """Deliveries not finished yet (any replica's), for the pending gauge."""
        with _translate("counting pending notification deliveries"):
            async with self._store._conn(write=False) as conn:
                count = await conn.execute(
                    select(func.count()).select_from(_N).where(_N.c.state == PENDING)
                )
                return int(count.scalar_one())

    async def purge(self, *, older_than: datetime) -> int:
        """Forget finished deliveries and events older than ``older_than``."""
        _aware("older_than", older_than)
        with _translate("purging the outbox"):
            async with self._store._conn(write=True) as conn:
                result = await conn.execute(
                    delete(_N).where(_N.c.state != PENDING, _N.c.occurred_at < older_than)
                )
                pending = select(_N.c.id).where(_N.c.event_id == _X.c.event_id)
                await conn.execute(delete(_X).where(_X.c.created_at < older_than, ~exists(pending)))
        return int(result.rowcount)


__all__ = ["DELIVERED", "FAILED", "PENDING", "Delivery", "NewEvent", "OutboxStore"]

"""Recording gateway events in the outbox, inside the transaction of the change they report.

Each event matched against the stored subscriptions becomes one outbox row and one delivery per
matching subscription. Events nobody subscribed to are not stored.

Atomicity (at least once)
    The hook bus (:meth:`netweave.operations.events.HookBus.change`) calls
    :meth:`NotificationRecorder.record_events` as the last step *inside* the store transaction
    of the change, so the change and its outbox rows commit together: there is no moment when a
    change is committed and its notification not yet stored, and a process killed at any point
    loses neither or both. Recording is part of the change: if the insert fails, the transaction
    rolls back and the change fails with the store's error (a client sees 503/500 and may
    retry; the operation worker retries its step). Plugins' event hooks run after commit.

Ordering
    ``occurred_at`` (and the notification's ``timeStamp``) is the time of recording, taken after
    the change's writes, just before commit. A later change of the same rows waits for those row
    locks (on SQLite: for the one write lock) before it can take its own time, so per deployment
    the times follow commit order; ties fall back to the delivery ``id`` (insertion order).
    Deliveries become due ``settle_seconds`` after recording: an event stamped a little before
    another but committed a little after it (transactions that touched different rows) is still
    claimed first, because the claim holds back a delivery while an earlier one with the same
    ordering key is pending. Replicas are assumed to share a synchronised clock (as the leases
    already do).

Who gets an event
    The subscription list is read just *before* the change's transaction (:meth:`prepare`),
    so on SQLite the one write lock is not held for that read. Inside the transaction it is
    read again only if this process wrote a subscription meanwhile (or is writing one), so in
    one process every subscription committed before the change gets its events. A subscription
    another replica commits while a change is in flight (after its read) may miss that change's
    events: the guarantee across replicas is for subscriptions created before the change began
    (see docs/replicas.md). On SQLite, which serves one process, the list is kept in memory
    between changes and read again only after this process wrote a subscription.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from netweave.models import Operation
from netweave.notifications.events import (
    DeploymentEvent,
    DirectedEvent,
    EventFacts,
    GatewayEvent,
    OperationEvent,
    PackageEvent,
    deployment_facts,
    event_payload,
    matches,
    operation_facts,
    package_facts,
    wants_package,
)
from netweave.store import Store, SubscriptionRecord
from netweave.store.outbox import NewEvent, OutboxStore

_log = logging.getLogger("netweave.notifications")

_PAGE = 1000
#: Bound on the subscriptions one event is matched against (pages of ``_PAGE``).
_MAX_PAGES = 100


@dataclass(frozen=True, slots=True)
class PreparedSubscriptions:
    """The subscription list read before a change, and the store's subscription-write counts
    (:meth:`netweave.store.Store.subscription_writes`) when it was read."""

    writes: tuple[int, int]
    subscriptions: list[SubscriptionRecord]


class NotificationRecorder:
    def __init__(
        self,
        store: Store,
        outbox: OutboxStore,
        *,
        settle_seconds: float = 0.5,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._settle = timedelta(seconds=settle_seconds)
        self._on_recorded = on_recorded
        # On a store no other process writes: the list and the write counts it was read at.
        self._cached: PreparedSubscriptions | None = None

    # -- the hook bus's entry points ---------------------------------------------------------

    async def prepare(self) -> PreparedSubscriptions | None:
        """The subscription list, read before the change's transaction (see the module
        docstring); None while this process is writing a subscription (read it in the
        transaction then)."""
        writes = self._store.subscription_writes()
        if writes[0] != writes[1]:
            return None
        return PreparedSubscriptions(writes, await self._subscriptions())

    async def record_events(
        self, events: Sequence[GatewayEvent], prepared: PreparedSubscriptions | None = None
    ) -> list[str | None]:
        """Store ``events`` (one change's, in order) in the caller's transaction if there is
        one; each one's event id, or None where no subscription matched. Raises on failure.
        ``prepared``: the list :meth:`prepare` read, used if still current. A
        :class:`DirectedEvent` goes to the subscriptions it names, without matching."""
        if not events:
            return []
        if prepared is not None and prepared.writes == self._store.subscription_writes():
            subscriptions = prepared.subscriptions
        else:
            subscriptions = await self._subscriptions()
        # The hook bus's batch says without building the events' wire forms (their cost)
        # whether it holds directed ones; a plain sequence is looked through.
        directed = getattr(events, "has_directed", None)
        if directed is None:
            directed = any(isinstance(event, DirectedEvent) for event in events)
        if not subscriptions and not directed:
            return [None] * len(events)
        now = _now()
        ids: list[str | None] = []
        new: list[NewEvent] = []
        for event in events:
            if isinstance(event, DirectedEvent):
                item = _directed(event, now)
                ids.append(item.event_id if item is not None else None)
                if item is not None:
                    new.append(item)
                continue
            if not subscriptions:
                ids.append(None)
                continue
            facts = await self._facts(event, subscriptions, now)
            [(event_id, made)] = self._new_events([facts], subscriptions)
            ids.append(event_id)
            if made is not None:
                new.append(made)
        await self._outbox.record_events(new, due_at=now + self._settle, now=now)
        return ids

    def committed(self) -> None:
        """Called after the recording transaction committed: wake the delivery worker."""
        if self._on_recorded is not None:
            self._on_recorded()

    # -- one event in its own transaction (tests, tools) ---------------------------------------

    async def package_event(self, event_type: str, package: Mapping[str, Any]) -> str | None:
        return await self._one(PackageEvent(event_type, dict(package)))

    async def deployment_event(self, event_type: str, deployment: Mapping[str, Any]) -> str | None:
        return await self._one(DeploymentEvent(event_type, dict(deployment)))

    async def operation_event(self, operation: Operation, previous_state: str | None) -> str | None:
        return await self._one(OperationEvent(operation, previous_state))

    async def record(
        self, facts: EventFacts, subscriptions: list[SubscriptionRecord] | None = None
    ) -> str | None:
        """Store prepared facts for every matching subscription; the event id, or None."""
        if subscriptions is None:
            subscriptions = await self._subscriptions()
        [event_id] = await self._store_facts([facts], subscriptions, _now())
        if event_id is not None:
            self.committed()
        return event_id

    async def _one(self, event: GatewayEvent) -> str | None:
        async with self._store.transaction():
            [event_id] = await self.record_events([event])
        if event_id is not None:
            self.committed()
        return event_id

    # -- internals -----------------------------------------------------------------------------

    async def _facts(
        self, event: GatewayEvent, subscriptions: list[SubscriptionRecord], now: datetime
    ) -> EventFacts:
        if isinstance(event, PackageEvent):
            return package_facts(event.event_type, event.package, now)
        if isinstance(event, DeploymentEvent):
            return deployment_facts(event.event_type, event.deployment, now)
        assert isinstance(event, OperationEvent)  # directed events are not matched here
        package_id = None
        if any(wants_package(s.filter) for s in subscriptions):
            # The operation carries no package: its deployment's (read in this transaction).
            deployment = await self._store.get_deployment(event.operation.deployment_id)
            package_id = deployment.package_id if deployment is not None else None
        return operation_facts(event.operation, event.previous_state, now, package_id)

    async def _store_facts(
        self, facts: Sequence[EventFacts], subscriptions: list[SubscriptionRecord], now: datetime
    ) -> list[str | None]:
        made = self._new_events(facts, subscriptions)
        new = [event for _, event in made if event is not None]
        await self._outbox.record_events(new, due_at=now + self._settle, now=now)
        return [event_id for event_id, _ in made]

    @staticmethod
    def _new_events(
        facts: Sequence[EventFacts], subscriptions: list[SubscriptionRecord]
    ) -> list[tuple[str | None, NewEvent | None]]:
        made: list[tuple[str | None, NewEvent | None]] = []
        for item in facts:
            targets = [s.subscription_id for s in subscriptions if matches(s.filter, item)]
            if not targets:
                made.append((None, None))
                continue
            event_id = str(uuid.uuid4())
            made.append(
                (
                    event_id,
                    NewEvent(
                        event_id=event_id,
                        event_type=item.event_type,
                        payload=event_payload(item),
                        occurred_at=item.occurred_at,
                        ordering_key=item.ordering_key,
                        subscription_ids=targets,
                    ),
                )
            )
        return made

    async def _subscriptions(self) -> list[SubscriptionRecord]:
        """The stored subscriptions. On a store only this process writes (SQLite), the copy
        read last while no subscription write was under way, as long as none has been made
        since; elsewhere (other replicas may write) read anew."""
        writes = self._store.subscription_writes()
        cached = self._cached
        if cached is not None and cached.writes == writes:
            return cached.subscriptions
        found = await self._read_subscriptions()
        if (
            self._store.sole_writer
            and writes[0] == writes[1]
            and self._store.subscription_writes() == writes
        ):
            self._cached = PreparedSubscriptions(writes, found)
        return found

    async def _read_subscriptions(self) -> list[SubscriptionRecord]:
        found: list[SubscriptionRecord] = []
        for page in range(_MAX_PAGES):
            batch = await self._store.list_subscriptions(limit=_PAGE, offset=page * _PAGE)
            found.extend(batch.items)
            if len(found) >= batch.total or not batch.items:
                break
        else:
            _log.warning("more than %d subscriptions: later ones miss events", _PAGE * _MAX_PAGES)
        return found


def _directed(event: DirectedEvent, now: datetime) -> NewEvent | None:
    if not event.subscription_ids:
        return None
    event_id = str(uuid.uuid4())
    payload = {**event.payload, "timeStamp": now.isoformat().replace("+00:00", "Z")}
    return NewEvent(
        event_id=event_id,
        event_type=event.event_type,
        payload=payload,
        occurred_at=now,
        ordering_key=event.ordering_key,
        subscription_ids=event.subscription_ids,
    )


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["NotificationRecorder", "PreparedSubscriptions"]

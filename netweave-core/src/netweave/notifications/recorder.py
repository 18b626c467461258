"""Recording gateway events in the outbox (called by the hook bus, after the change commits).

Each event matched against the stored subscriptions becomes one outbox row and one delivery per
matching subscription, written in one transaction. Events nobody subscribed to are not stored.

Why after commit and not in the change's own transaction: the services fire the hook bus once
their transaction has committed (plugins must never run inside it), and the outbox is fed from
there. The cost is a window between commit and record: a process killed inside it loses those
notifications (the change itself is safe). Ordering stays right across that window because
deliveries are ordered by the time of the change at its source (``occurred_at``), and become due
``settle_seconds`` after recording, so an event recorded a little late still goes out first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from netweave.models import Operation
from netweave.notifications.events import (
    EventFacts,
    deployment_facts,
    event_payload,
    matches,
    operation_facts,
    package_facts,
    wants_package,
)
from netweave.store import Store, SubscriptionRecord
from netweave.store.outbox import OutboxStore

_log = logging.getLogger("netweave.notifications")

_PAGE = 1000
#: Bound on the subscriptions one event is matched against (pages of ``_PAGE``).
_MAX_PAGES = 100


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

    async def package_event(self, event_type: str, package: Mapping[str, Any]) -> str | None:
        return await self.record(package_facts(event_type, package, _now()))

    async def deployment_event(self, event_type: str, deployment: Mapping[str, Any]) -> str | None:
        return await self.record(deployment_facts(event_type, deployment, _now()))

    async def operation_event(self, operation: Operation, previous_state: str | None) -> str | None:
        subscriptions = await self._subscriptions()
        package_id = None
        if any(wants_package(s.filter) for s in subscriptions):
            deployment = await self._store.get_deployment(operation.deployment_id)
            package_id = deployment.package_id if deployment is not None else None
        facts = operation_facts(operation, previous_state, _now(), package_id)
        return await self.record(facts, subscriptions)

    async def record(
        self, facts: EventFacts, subscriptions: list[SubscriptionRecord] | None = None
    ) -> str | None:
        """Store the event for every matching subscription; its event id, or None if none."""
        if subscriptions is None:
            subscriptions = await self._subscriptions()
        targets = [s.subscription_id for s in subscriptions if matches(s.filter, facts)]
        if not targets:
            return None
        event_id = str(uuid.uuid4())
        now = _now()
        await self._outbox.record_event(
            event_id=event_id,
            event_type=facts.event_type,
            payload=event_payload(facts),
            occurred_at=facts.occurred_at,
            ordering_key=facts.ordering_key,
            subscription_ids=targets,
            due_at=now + self._settle,
            now=now,
        )
        if self._on_recorded is not None:
            self._on_recorded()
        return event_id

    async def _subscriptions(self) -> list[SubscriptionRecord]:
        found: list[SubscriptionRecord] = []
        for page in range(_MAX_PAGES):
            batch = await self._store.list_subscriptions(limit=_PAGE, offset=page * _PAGE)
            found.extend(batch.items)
            if len(found) >= batch.total or not batch.items:
                break
        else:
            _log.warning("more than %d subscriptions: later ones miss events", _PAGE * _MAX_PAGES)
        return found


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["NotificationRecorder"]

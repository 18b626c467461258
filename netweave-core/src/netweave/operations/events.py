"""Firing the pluggy event and validation hooks from the data path.

Events are two steps (see :meth:`HookBus.change`):

* **record**, inside the store transaction of the change: the events are written to the
  notification outbox (:mod:`netweave.notifications.recorder`) as the block's last statements,
  so they commit or roll back with the change. A failed insert fails the change (at least once
  needs the event stored whenever the change is).
* **broadcast**, after commit: the plugins' ``netweave_*_event`` hooks. They never run inside
  the transaction (a slow plugin must not hold row locks or SQLite's write lock, and a plugin
  must never see a change that then rolls back). An implementation may return an awaitable
  (see :mod:`netweave.hookspecs`); each is awaited with a timeout. A plugin's failure is logged
  and never reaches the client: the change it reports has already happened.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

import pluggy

from netweave.adapters import DMSAdapter, PackageUpload
from netweave.errors import BackendUnavailable, InvalidInput, NetweaveError
from netweave.models import Deployment, DeploymentRequest, Operation, ResourceStatus
from netweave.notifications.events import (
    DeploymentEvent,
    DirectedEvent,
    GatewayEvent,
    OperationEvent,
    PackageEvent,
)
from netweave.operations.convert import deployment_to_wire, operation_to_wire, wire_dict
from netweave.store import DeploymentRecord, OperationRecord, Store

_log = logging.getLogger("netweave.events")


class EventRecorder(Protocol):
    """Where events are recorded for subscribers (the notification outbox)."""

    async def prepare(self) -> Any:
        """Before a change's transaction: what ``record_events`` may use (a read it need not
        repeat inside the transaction)."""

    async def record_events(
        self, events: Sequence[GatewayEvent], prepared: Any = None
    ) -> Sequence[str | None]:
        """Write ``events`` in the current transaction; raise if that fails. Each event's id,
        or None where it was not stored (nobody subscribed to it)."""

    def committed(self) -> None:
        """A transaction that stored events committed."""


@dataclass(frozen=True, slots=True)
class OperationNote:
    """What an in-transaction observer (:meth:`HookBus.observe`) learns of an operation event
    without its wire form being built."""

    operation_id: str
    deployment_id: str
    state: str
    previous_state: str | None
    #: See :class:`~netweave.notifications.events.OperationEvent`.
    resources: tuple[ResourceStatus, ...] | None
    #: The problem the operation ended with (FAILED_TEMP), if any.
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PackageNote:
    """What an in-transaction observer learns of a package event without its wire form:
    the event type, the package as it was reported and, for a change, its state before."""

    event_type: str
    package: dict[str, Any]
    previous_state: str | None = None


class EventBatch(Sequence[GatewayEvent]):
    """The events one change reports, in the order they happened.

    Given as records, an event's wire form is built when the events are first read: with no
    subscription and no plugin listening, never (it is most of an event's cost). Records are
    taken as they are when added; the change must not alter them afterwards.
    """

    __slots__ = ("_made", "_pending", "has_directed", "operations", "packages")

    def __init__(self) -> None:
        self._pending: list[GatewayEvent | Callable[[], GatewayEvent]] = []
        self._made: list[GatewayEvent] | None = None
        #: Whether :meth:`directed` added one (read without building the events).
        self.has_directed = False
        #: The operation events' facts, in order (for observers; no wire form built).
        self.operations: list[OperationNote] = []
        #: The package events, in order (for observers).
        self.packages: list[PackageNote] = []

    def package(
        self, event_type: str, package: dict[str, Any], *, previous_state: str | None = None
    ) -> None:
        """``previous_state``: for a change, the package's state before it."""
        self.packages.append(PackageNote(event_type, package, previous_state))
        self._add(PackageEvent(event_type, package))

    def deployment(
        self, event_type: str, deployment: dict[str, Any] | DeploymentRecord | Deployment
    ) -> None:
        if isinstance(deployment, DeploymentRecord):
            record = deployment
            self._add(lambda: DeploymentEvent(event_type, wire_dict(deployment_to_wire(record))))
        elif isinstance(deployment, Deployment):
            wire = deployment
            self._add(lambda: DeploymentEvent(event_type, wire_dict(wire)))
        else:
            self._add(DeploymentEvent(event_type, deployment))

    def operation(
        self,
        operation: Operation | OperationRecord,
        previous_state: str | None,
        resources: Sequence[ResourceStatus] | None = None,
    ) -> None:
        """``resources``: what the backend reported holding when the operation reached this
        state (``()``: the deployment is gone; ``None``: no report)."""
        held = tuple(resources) if resources is not None else None
        self.operations.append(
            OperationNote(
                operation.operation_id,
                operation.deployment_id,
                operation.state.value,
                previous_state,
                held,
                _problem(operation.error),
            )
        )
        if isinstance(operation, OperationRecord):
            record = operation
            self._add(lambda: OperationEvent(operation_to_wire(record), previous_state, held))
        else:
            self._add(OperationEvent(operation, previous_state, held))

    def directed(self, event: DirectedEvent) -> None:
        """An event for the subscriptions it names (see ``DirectedEvent``)."""
        self.has_directed = True
        self._add(event)

    def _add(self, event: GatewayEvent | Callable[[], GatewayEvent]) -> None:
        self._pending.append(event)
        self._made = None

    @property
    def events(self) -> list[GatewayEvent]:
        if self._made is None:
            self._made = [e if isinstance(e, _EVENT_TYPES) else e() for e in self._pending]
            self._pending = list(self._made)
        return self._made

    def __len__(self) -> int:
        return len(self._pending)

    @overload
    def __getitem__(self, index: int) -> GatewayEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[GatewayEvent]: ...

    def __getitem__(self, index: int | slice) -> GatewayEvent | Sequence[GatewayEvent]:
        return self.events[index]


def _problem(error: Any) -> dict[str, Any] | None:
    if not error:
        return None
    if isinstance(error, dict):
        return dict(error)
    dumped: dict[str, Any] = error.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


_EVENT_TYPES = (PackageEvent, DeploymentEvent, OperationEvent, DirectedEvent)
_EVENT_HOOKS = ("netweave_package_event", "netweave_deployment_event", "netweave_operation_event")


@dataclass(slots=True)
class _Open:
    batch: EventBatch
    task: asyncio.Task[Any] | None
    on_commit: list[Callable[[], object]] = field(default_factory=list)
    stored: bool = False


class HookBus:
    """Thin wrapper over the plugin manager's hook caller, so services never touch pluggy."""

    def __init__(
        self,
        plugin_manager: pluggy.PluginManager,
        *,
        timeout: float = 2.0,
        recorder: EventRecorder | None = None,
    ) -> None:
        self._pm = plugin_manager
        self._timeout = timeout
        self.recorder = recorder
        self._observers: list[Callable[[EventBatch], Awaitable[None]]] = []
        self._read_listeners: list[Callable[[str, str, float], None]] = []
        self._open: ContextVar[_Open | None] = ContextVar(
            f"netweave_events_{id(self)}", default=None
        )

    # -- validation (synchronous, before anything is stored) ---------------------------------

    def validate_package(self, upload: PackageUpload, adapter: DMSAdapter) -> None:
        self._validate(
            lambda: self._pm.hook.netweave_validate_package(upload=upload, adapter=adapter)
        )

    def validate_deployment(self, request: DeploymentRequest, adapter: DMSAdapter) -> None:
        self._validate(
            lambda: self._pm.hook.netweave_validate_deployment(request=request, adapter=adapter)
        )

    @staticmethod
    def _validate(call: Callable[[], Any]) -> None:
        try:
            call()
        except NetweaveError:
            raise
        except ValueError as exc:
            # A validator refusing with a plain ValueError is still a refusal of the input.
            raise InvalidInput(str(exc)) from exc

    def select_adapter(
        self, kind: str, payload: dict[str, Any], candidates: list[str]
    ) -> str | None:
        """``netweave_select_adapter`` (firstresult, synchronous); ``None``: use the default."""
        choice = self._pm.hook.netweave_select_adapter(
            kind=kind, payload=payload, candidates=candidates
        )
        if choice is not None and choice not in candidates:
            raise InvalidInput(
                f"a plugin selected adapter {choice!r}, which is not among {candidates}",
                details={"field": "adapter"},
            )
        return choice if isinstance(choice, str) else None

    # -- events: recorded in the change's transaction, broadcast after commit -----------------

    def observe(self, observer: Callable[[EventBatch], Awaitable[None]]) -> None:
        """Run ``observer`` on every change's events inside its transaction, before they are
        recorded: it may write (e.g. what an operation's end means for a record of its own)
        and add events to the batch. Its failure fails the change, as a recording failure
        does."""
        self._observers.append(observer)

    def on_recorded_read(self, listener: Callable[[str, str, float], None]) -> None:
        """Call ``listener(adapter, backend_ref, started)`` after each :meth:`recorded_read`
        (in-process only; the reconciler uses it to skip reads that add nothing)."""
        self._read_listeners.append(listener)

    def recorded_read(self, adapter: str, backend_ref: str, started: float) -> None:
        """A committed change recorded what ``adapter`` reported of ``backend_ref`` in a read
        that began at ``started`` (``time.monotonic()``): every change of the backend made
        before then is in the store now."""
        for listener in self._read_listeners:
            try:
                listener(adapter, backend_ref, started)
            except Exception:
                # Only an optimisation rides on it: the change itself is committed.
                _log.exception("recorded-read listener failed")

    @asynccontextmanager
    async def change(
        self, store: Store, *, on_commit: Callable[[], object] | None = None
    ) -> AsyncIterator[EventBatch]:
        """A store transaction whose events (added to the yielded batch) are recorded in it,
        as its last statements, and broadcast to plugins once it committed (``on_commit``,
        e.g. a cache invalidation, runs between the two).

        If the block raises, nothing is committed, recorded or broadcast. A ``change`` opened
        inside another one (same task) joins it: its events are recorded and broadcast with
        the outer change's, so broadcasting never happens inside a transaction. Do not open one
        inside a bare ``store.transaction()``: it would join that transaction and broadcast
        before it commits (no service does; changes reporting events use ``change``).
        """
        outer = self._open.get()
        if outer is not None and outer.task is asyncio.current_task():
            yield outer.batch
            if on_commit is not None:
                outer.on_commit.append(on_commit)
            return
        opened = _Open(EventBatch(), asyncio.current_task())
        if on_commit is not None:
            opened.on_commit.append(on_commit)
        # Outside the transaction: on SQLite, reads there do not hold the one write lock.
        prepared = await self.recorder.prepare() if self.recorder is not None else None
        token = self._open.set(opened)
        try:
            async with store.transaction():
                yield opened.batch
                for observer in self._observers:
                    await observer(opened.batch)
                opened.stored = await self.record(opened.batch, prepared)
        finally:
            self._open.reset(token)
        for callback in opened.on_commit:
            callback()
        if opened.stored and self.recorder is not None:
            # Only then: waking the delivery worker for events nobody subscribed to would
            # cost a claim round (a query) per change for nothing.
            self.recorder.committed()
        await self.broadcast(opened.batch)

    async def record(self, events: Sequence[GatewayEvent], prepared: Any = None) -> bool:
        """Write ``events`` to the outbox (inside the caller's transaction); whether any was
        stored. Not caught: a failure must roll the change back. Awaited without the plugins'
        timeout (a cancelled insert would fail the change for nothing)."""
        if self.recorder is None or not events:
            return False
        try:
            ids = await self.recorder.record_events(events, prepared)
        except BackendUnavailable:
            raise  # 503: the database is away, the client may retry
        except Exception as exc:
            # Never the client's fault (a 400/409 from the outbox insert would say it was).
            detail = exc.message if isinstance(exc, NetweaveError) else type(exc).__name__
            raise NetweaveError(f"recording the change's notification failed: {detail}") from exc
        return any(event_id is not None for event_id in ids)

    async def broadcast(self, events: Sequence[GatewayEvent]) -> None:
        """After commit: the plugins' event hooks, in order; failures are logged only."""
        if not events or not any(
            getattr(self._pm.hook, name).get_hookimpls() for name in _EVENT_HOOKS
        ):
            return  # nobody listens: the events' wire forms need not be built
        for event in events:
            if isinstance(event, DirectedEvent):
                continue  # for the subscriptions it names only
            name, kwargs = _hook_call(event)
            await self._broadcast(name, kwargs)

    async def _broadcast(self, name: str, kwargs: dict[str, Any]) -> None:
        try:
            results = getattr(self._pm.hook, name)(**kwargs)
        except Exception:
            _log.exception("hook %s failed", name)
            return
        pending = [r for r in results if inspect.isawaitable(r)]
        if not pending:
            return
        outcomes = await asyncio.gather(
            *(asyncio.wait_for(r, self._timeout) for r in pending), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, TimeoutError):
                _log.warning("hook %s did not finish within %.1f s", name, self._timeout)
            elif isinstance(outcome, BaseException):
                _log.error("hook %s failed: %r", name, outcome)


def _hook_call(event: GatewayEvent) -> tuple[str, dict[str, Any]]:
    """The event hook and its arguments for ``event``."""
    if isinstance(event, PackageEvent):
        return "netweave_package_event", {"event_type": event.event_type, "package": event.package}
    if isinstance(event, DeploymentEvent):
        return "netweave_deployment_event", {
            "event_type": event.event_type,
            "deployment": event.deployment,
        }
    assert isinstance(event, OperationEvent)  # directed events are never broadcast
    return "netweave_operation_event", {
        "operation": event.operation,
        "previous_state": event.previous_state,
    }


__all__ = ["EventBatch", "EventRecorder", "HookBus", "OperationNote", "PackageNote"]

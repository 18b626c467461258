"""Firing the pluggy event and validation hooks from the data path.

Event hooks are broadcast after the change is committed. Before the plugins, the event is
recorded in the notification outbox (``recorder``, see :mod:`netweave.notifications.recorder`
for why right after commit rather than inside the change's transaction). An implementation
may return an awaitable (see :mod:`netweave.hookspecs`); each is awaited with a timeout. A
plugin's failure is logged and never reaches the client: the change it reports has already
happened.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pluggy

from netweave.adapters import PackageUpload
from netweave.errors import InvalidInput, NetweaveError
from netweave.models import DeploymentRequest, Operation

_log = logging.getLogger("netweave.events")


class EventRecorder(Protocol):
    """Where events are recorded for subscribers (the notification outbox)."""

    async def package_event(self, event_type: str, package: dict[str, Any]) -> Any: ...

    async def deployment_event(self, event_type: str, deployment: dict[str, Any]) -> Any: ...

    async def operation_event(self, operation: Operation, previous_state: str | None) -> Any: ...


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

    # -- validation (synchronous, before anything is stored) ---------------------------------

    def validate_package(self, upload: PackageUpload, adapter: str) -> None:
        self._validate(
            lambda: self._pm.hook.netweave_validate_package(upload=upload, adapter=adapter)
        )

    def validate_deployment(self, request: DeploymentRequest, adapter: str) -> None:
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

    # -- events (after commit) ---------------------------------------------------------------

    async def package_event(self, event_type: str, package: dict[str, Any]) -> None:
        await self._record(lambda r: r.package_event(event_type, package))
        await self._broadcast(
            "netweave_package_event",
            lambda: self._pm.hook.netweave_package_event(event_type=event_type, package=package),
        )

    async def deployment_event(self, event_type: str, deployment: dict[str, Any]) -> None:
        await self._record(lambda r: r.deployment_event(event_type, deployment))
        await self._broadcast(
            "netweave_deployment_event",
            lambda: self._pm.hook.netweave_deployment_event(
                event_type=event_type, deployment=deployment
            ),
        )

    async def operation_event(self, operation: Operation, previous_state: str | None) -> None:
        await self._record(lambda r: r.operation_event(operation, previous_state))
        await self._broadcast(
            "netweave_operation_event",
            lambda: self._pm.hook.netweave_operation_event(
                operation=operation, previous_state=previous_state
            ),
        )

    async def _record(self, call: Callable[[EventRecorder], Awaitable[Any]]) -> None:
        """Awaited without the plugins' timeout (a cancelled insert would lose the event);
        a failure is logged, never raised: the change it reports is already committed."""
        if self.recorder is None:
            return
        try:
            await call(self.recorder)
        except Exception:
            _log.exception("recording a notification event failed")

    async def _broadcast(self, name: str, call: Callable[[], list[Any]]) -> None:
        try:
            results = call()
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

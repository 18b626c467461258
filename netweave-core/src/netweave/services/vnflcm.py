"""ETSI SOL003 VNF lifecycle management over the native services (the ``/vnflcm`` face).

A VNF instance is a stored record that exists before instantiation; instantiating it creates
the native deployment (``DeploymentService.create``) and every later task is a native
operation, so the one operation runner and its state machine carry them all:

=================  ==========================================================================
SOL003 task        native operation
=================  ==========================================================================
INSTANTIATE        CREATE of a deployment (name, namespace and values from additionalParams)
TERMINATE          DELETE of that deployment
SCALE / _TO_LEVEL  UPDATE merging the aspects' replica keys (replicas = min + level * step)
CHANGE_VNFPKG      UPDATE to the package the new vnfdId names (an upgrade)
HEAL               UPDATE with no change: the backend applies the release again, re-creating
                   the workloads that are missing or drifted
MODIFY_INFO        none: the gateway changes its own record (an occurrence COMPLETED at once)
=================  ==========================================================================

The occurrence id *is* the native operation id; its state is the native operation's (already
ETSI's). ``instantiationState`` is derived: INSTANTIATED while the instance's deployment exists
and its instantiate operation is COMPLETED (or was given up as FAILED: resources remain, so
terminate must be possible).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from netweave.adapters.times import now
from netweave.adapters.values import merge_values as _merge
from netweave.config.registry import AdapterRegistry
from netweave.errors import Conflict, InvalidInput, NotFound, Unprocessable
from netweave.models import (
    DeploymentRequest,
    DeploymentStatus,
    DeploymentUpdate,
    Operation,
    OperationState,
)
from netweave.notifications import Notifications
from netweave.operations.events import HookBus
from netweave.services.deployments import Accepted, DeploymentService, blocked
from netweave.services.occurrences import OperationService
from netweave.services.vnflcm_notify import (
    CREATION_NOTIFICATION,
    DELETION_NOTIFICATION,
    VnfLcmChannel,
    VnfLcmNotifier,
    VnfLcmSubscriptions,
)
from netweave.store import DeploymentRecord, OperationRecord, PackageRecord, Store
from netweave.store.vnf import (
    ColumnTerm,
    StampPage,
    SummaryPage,
    VnfInstanceRecord,
    VnfLcmOpOccRecord,
)

VnfdAspects = Callable[[str, str | None], Awaitable[dict[str, dict[str, Any]]]]
#: A package's VNFD's instantiation levels for a flavour: level id → aspect id → scale level.
VnfdLevels = Callable[[str, str | None], Awaitable[dict[str, dict[str, int]]]]
VnfdLevel = Callable[[str, str | None], Awaitable[dict[str, int]]]
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
#: Helm's conventional replica key (``helm create``): the derived aspect of a bare chart.
DEFAULT_REPLICA_KEY = "replicaCount"
DEFAULT_ASPECT = "default"
MAX_SCALE_LEVEL = 1000
#: Native states that leave the instance INSTANTIATED once its deployment exists.
_INSTANTIATED_BY = frozenset({OperationState.COMPLETED, OperationState.FAILED})


class LcmOperation:
    INSTANTIATE = "INSTANTIATE"
    TERMINATE = "TERMINATE"
    SCALE = "SCALE"
    SCALE_TO_LEVEL = "SCALE_TO_LEVEL"
    CHANGE_VNFPKG = "CHANGE_VNFPKG"
    HEAL = "HEAL"
    MODIFY_INFO = "MODIFY_INFO"


@dataclass(slots=True)
class VnfView:
    """A VNF instance with what its state is derived from."""

    record: VnfInstanceRecord
    package: PackageRecord | None
    deployment: DeploymentRecord | None
    instantiate_operation: OperationRecord | None

    @property
    def instantiated(self) -> bool:
        op = self.instantiate_operation
        return self.deployment is not None and op is not None and op.state in _INSTANTIATED_BY

    @property
    def vnfd_id(self) -> str:
        # After change_vnfpkg the deployment runs the new package.
        if self.deployment is not None:
            return self.deployment.package_id
        return self.record.vnfd_id

    def scale_status(self) -> list[dict[str, Any]]:
        if self.deployment is None:
            return []
        return [
            {"aspectId": aspect, "scaleLevel": level_of(spec, self.deployment.values)}
            for aspect, spec in self.record.aspects.items()
        ]


@dataclass(slots=True)
class OpOccView:
    record: VnfLcmOpOccRecord
    #: ``None`` for an occurrence without a native operation (MODIFY_INFO).
    operation: OperationRecord | None

    @property
    def state(self) -> OperationState:
        if self.operation is not None:
            return self.operation.state
        return OperationState(self.record.state or OperationState.COMPLETED.value)

    @property
    def state_entered_time(self) -> datetime:
        if self.operation is not None:
            return self.operation.state_entered_time
        return self.record.start_time


def get_path(values: dict[str, Any], key: str) -> Any:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def nested(key: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    node = result
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def level_of(spec: dict[str, Any], values: dict[str, Any]) -> int:
    replicas = get_path(values, str(spec["replicaKey"]))
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        return 0
    return max(0, (replicas - int(spec["minReplicas"])) // int(spec["replicasPerStep"]))


def replicas_at(spec: dict[str, Any], level: int) -> int:
    return int(spec["minReplicas"]) + level * int(spec["replicasPerStep"])


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Unprocessable(
            f"additionalParams {name} must be an integer from {low} to {high}",
            details={"field": f"additionalParams.{name}"},
        )
    return value


def parse_aspects(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``additionalParams.scaleAspects`` ({aspectId: {replicaKey, minReplicas, replicasPerStep,
    maxScaleLevel}}), or the one aspect derived for a bare chart (``default`` on
    ``replicaCount``, or ``additionalParams.replicaKey``)."""
    raw = params.get("scaleAspects")
    if raw is None:
        key = params.get("replicaKey", DEFAULT_REPLICA_KEY)
        raw = {DEFAULT_ASPECT: {"replicaKey": key}}
    if not isinstance(raw, dict) or not raw or len(raw) > 50:
        raise Unprocessable(
            "additionalParams scaleAspects must map 1 to 50 aspect ids to their replica keys",
            details={"field": "additionalParams.scaleAspects"},
        )
    aspects: dict[str, dict[str, Any]] = {}
    for aspect, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("replicaKey"), str):
            raise Unprocessable(
                f"scale aspect {aspect!r} needs a replicaKey (a dotted values path)",
                details={"field": f"additionalParams.scaleAspects.{aspect}"},
            )
        key = spec["replicaKey"]
        if not _KEY.match(key) or len(key) > 253:
            raise Unprocessable(
                f"scale aspect {aspect!r}: replicaKey {key!r} is not a dotted values path",
                details={"field": f"additionalParams.scaleAspects.{aspect}.replicaKey"},
            )
        aspects[str(aspect)[:255]] = {
            "replicaKey": key,
            "minReplicas": _int(spec.get("minReplicas", 1), "minReplicas", 0, 10_000),
            "replicasPerStep": _int(spec.get("replicasPerStep", 1), "replicasPerStep", 1, 10_000),
            "maxScaleLevel": _int(
                spec.get("maxScaleLevel", 10), "maxScaleLevel", 0, MAX_SCALE_LEVEL
            ),
        }
    return aspects


class VnfLcmService:
    def __init__(
        self,
        store: Store,
        registry: AdapterRegistry,
        hooks: HookBus,
        deployments: DeploymentService,
        operations: OperationService,
        notifications: Notifications | None = None,
        *,
        test_callback: bool = True,
    ) -> None:
        self._store = store
        self._registry = registry
        self._hooks = hooks
        self._deployments = deployments
        self._operations = operations
        #: The scaling aspects a package's VNFD declares, by package id and flavour
        #: (netweave.services.vnfpkgm); instantiate uses them unless additionalParams
        #: names its own.
        self.vnfd_aspects: VnfdAspects | None = None
        self.vnfd_levels: VnfdLevels | None = None
        #: The VNFD's default instantiation level (aspect id → level) for a flavour: what
        #: instantiate without ``instantiationLevelId`` starts its aspects at (SOL003).
        self.vnfd_default_level: VnfdLevel | None = None
        #: LCM subscriptions and notifications (netweave.services.vnflcm_notify): the
        #: notifier sees every change's operation events inside its transaction.
        self.notifier = VnfLcmNotifier(store)
        hooks.observe(self.notifier.observe)
        self.subscriptions = VnfLcmSubscriptions(store, notifications, test_callback=test_callback)
        if notifications is not None:
            notifications.worker.add_channel(VnfLcmChannel(store))

    # -- reads -------------------------------------------------------------------------------

    async def record(self, vnf_instance_id: str) -> VnfInstanceRecord:
        record = await self._store.get_vnf_instance(vnf_instance_id)
        if record is None:
            raise NotFound(
                f"VNF instance {vnf_instance_id!r} not found",
                details={"vnfInstanceId": vnf_instance_id},
            )
        return record

    async def get(self, vnf_instance_id: str) -> VnfView:
        return (await self.views([await self.record(vnf_instance_id)]))[0]

    async def views(self, records: Sequence[VnfInstanceRecord]) -> list[VnfView]:
        deployments, operations = await self._store.deployments_and_operations(
            [r.deployment_id for r in records if r.deployment_id],
            [r.instantiate_operation_id for r in records if r.instantiate_operation_id],
        )
        packages: dict[str, PackageRecord | None] = {}
        views = []
        for record in records:
            deployment = deployments.get(record.deployment_id or "")
            package_id = deployment.package_id if deployment else record.vnfd_id
            if package_id not in packages:
                # Views are rendered, never changed: the store's record itself, no copy.
                packages[package_id] = await self._store.read_package(package_id)
            views.append(
                VnfView(
                    record=record,
                    package=packages[package_id],
                    deployment=deployment,
                    instantiate_operation=operations.get(record.instantiate_operation_id or ""),
                )
            )
        return views

    async def list_page(
        self,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
        json_columns: Collection[str] | None = None,
    ) -> list[VnfInstanceRecord]:
        """``json_columns``: see ``VnfStore.list_vnf_instances`` (the rest stay unread)."""
        return await self._store.list_vnf_instances(
            after=after, limit=limit, where=where, json_columns=json_columns
        )

    async def summary_page(
        self,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None,
    ) -> SummaryPage:
        """A page of instances' plain attributes, filtered exactly by ``where`` (see
        ``VnfStore.vnf_instance_summaries``)."""
        return await self._store.vnf_instance_summaries(
            after=after, limit=limit, where=where, adapter=adapter
        )

    async def summary_stamps(
        self,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None,
    ) -> StampPage:
        """The stamps of the page :meth:`summary_page` answers (``VnfStore.vnf_instance_stamps``):
        enough to tell whether items rendered earlier still hold."""
        return await self._store.vnf_instance_stamps(
            after=after, limit=limit, where=where, adapter=adapter
        )

    async def resources(self, view: VnfView) -> list[dict[str, Any]]:
        """The workloads the backend reports for the instance (kind, name, namespace, ready)."""
        if view.deployment is None or not view.instantiated:
            return []
        report = await self._deployments.status(view.deployment.deployment_id)
        return [r.model_dump(exclude_none=True) for r in report.resources]

    async def op_occ(self, op_occ_id: str) -> OpOccView:
        record = await self._store.get_vnf_op_occ(op_occ_id)
        if record is None:
            raise NotFound(
                f"VNF LCM operation occurrence {op_occ_id!r} not found",
                details={"vnfLcmOpOccId": op_occ_id},
            )
        return (await self.op_occ_views([record]))[0]

    async def op_occ_views(self, records: Sequence[VnfLcmOpOccRecord]) -> list[OpOccView]:
        _, operations = await self._store.deployments_and_operations(
            [], [r.op_occ_id for r in records if r.state is None]
        )
        return [OpOccView(record=r, operation=operations.get(r.op_occ_id)) for r in records]

    async def op_occ_page(
        self, after: tuple[datetime, str] | None, limit: int, where: Sequence[ColumnTerm] = ()
    ) -> list[VnfLcmOpOccRecord]:
        return await self._store.list_vnf_op_occs(after=after, limit=limit, where=where)

    # -- per adapter instance (O2ims deploymentManagers: one apiRoot each) --------------------

    async def adapter_of(self, vnf_instance_id: str) -> str | None:
        """The adapter instance a VNF instance belongs to: its deployment's, or before
        instantiation its package's (``None``: no such instance, or its package is gone)."""
        record = await self._store.get_vnf_instance(vnf_instance_id)
        if record is None:
            return None
        if record.deployment_id:
            deployment = await self._store.get_deployment(record.deployment_id)
            if deployment is not None:
                return deployment.adapter
        package = await self._store.get_package(record.vnfd_id)
        return package.adapter if package is not None else None

    async def adapter_of_op_occ(self, op_occ_id: str) -> str | None:
        record = await self._store.get_vnf_op_occ(op_occ_id)
        return None if record is None else await self.adapter_of(record.vnf_instance_id)

    # -- the instance resource ---------------------------------------------------------------

    async def create(
        self,
        vnfd_id: str,
        name: str | None,
        description: str | None,
        metadata: dict[str, Any] | None,
        adapter: str | None = None,
    ) -> VnfView:
        """``adapter``: the deployment manager whose apiRoot was called (its packages only)."""
        package = await self._store.get_package(vnfd_id)
        if package is None or (adapter is not None and package.adapter != adapter):
            raise Unprocessable(
                f"no package with vnfdId {vnfd_id!r} is onboarded"
                + (f" for deployment manager {adapter!r}" if adapter is not None else ""),
                details={"field": "vnfdId", "vnfdId": vnfd_id},
            )
        record = VnfInstanceRecord(
            vnf_instance_id=str(uuid.uuid4()),
            vnfd_id=vnfd_id,
            created_at=now(),
            name=name,
            description=description,
            instance_metadata=dict(metadata or {}),
        )
        async with self._hooks.change(self._store) as events:
            await self._store.add_vnf_instance(record)
            await self.notifier.identifier_event(events, CREATION_NOTIFICATION, record)
        return VnfView(record, package, None, None)

    async def delete(self, vnf_instance_id: str) -> None:
        view = await self.get(vnf_instance_id)
        if view.deployment is not None:
            state = "INSTANTIATED" if view.instantiated else "not yet NOT_INSTANTIATED"
            raise Conflict(
                f"VNF instance {vnf_instance_id} is {state} (deployment "
                f"{view.deployment.deployment_id} exists): terminate it first, or roll back or "
                "fail its instantiation",
                details={"vnfInstanceId": vnf_instance_id, "instantiationState": state},
            )
        async with self._hooks.change(self._store) as events:
            await self.notifier.identifier_event(events, DELETION_NOTIFICATION, view.record)
            await self._store.delete_vnf_instance(vnf_instance_id)

    async def modify(
        self,
        vnf_instance_id: str,
        changes: dict[str, Any],
        params: dict[str, Any],
        expected_version: int | None,
    ) -> OpOccView:
        """PATCH (MODIFY_INFO): the gateway's own record changes; an occurrence records it."""
        view = await self.get(vnf_instance_id)
        record = view.record
        if view.deployment is not None:
            # SOL003 5.4.3.3.4: 409 while another LCM operation on the instance is in progress
            # (FAILED_TEMP included: it still holds the instance until retried, rolled back or
            # failed).
            active = await self._store.active_operation_for(view.deployment.deployment_id)
            if active is not None:
                raise blocked(view.deployment.deployment_id, active)
        if "vnfd_id" in changes:
            if view.deployment is not None:
                raise Conflict(
                    "vnfdId of an instantiated VNF changes with change_vnfpkg, not PATCH",
                    details={"field": "vnfdId"},
                )
            if await self._store.get_package(changes["vnfd_id"]) is None:
                raise Unprocessable(
                    f"no package with vnfdId {changes['vnfd_id']!r} is onboarded",
                    details={"field": "vnfdId"},
                )
        for name in ("properties", "instance_metadata", "extensions"):
            if name in changes:
                changes[name] = merge_patch(getattr(record, name), changes[name])
        stamp = now()
        op_occ = VnfLcmOpOccRecord(
            op_occ_id=str(uuid.uuid4()),
            vnf_instance_id=vnf_instance_id,
            operation=LcmOperation.MODIFY_INFO,
            start_time=stamp,
            operation_params=params,
            changed_info=params,
            state=OperationState.COMPLETED.value,
        )
        async with self._hooks.change(self._store) as events:
            await self._store.update_vnf_instance(
                vnf_instance_id, expected_version=expected_version, **changes
            )
            await self._store.add_vnf_op_occ(op_occ)
            # Done by the gateway alone: it starts (PROCESSING) and completes in this change.
            await self.notifier.occurrence_event(events, op_occ, OperationState.PROCESSING.value)
            await self.notifier.occurrence_event(events, op_occ, OperationState.COMPLETED.value)
        return OpOccView(op_occ, None)

    # -- tasks ---------------------------------------------------------------------------------

    async def instantiate(
        self, vnf_instance_id: str, request: dict[str, Any], params: dict[str, Any]
    ) -> OpOccView:
        view = await self.get(vnf_instance_id)
        record = view.record
        if view.deployment is not None:
            raise Conflict(
                f"VNF instance {vnf_instance_id} is already "
                + ("INSTANTIATED" if view.instantiated else "being instantiated"),
                details={"vnfInstanceId": vnf_instance_id},
            )
        level_id = request.get("instantiationLevelId")
        # Resolved before anything changes: an undeclared level or an unreadable VNFD refuses
        # the request with nothing created.
        level = (
            await self._level(record.vnfd_id, request.get("flavourId"), str(level_id))
            if level_id is not None
            else None
        )
        for name in ("extVirtualLinks", "extManagedVirtualLinks"):
            if request.get(name):
                raise Unprocessable(
                    f"{name} is not supported: a container workload's connectivity comes from "
                    "its package",
                    details={"field": name},
                )
        extra = dict(request.get("additionalParams") or {})
        implicit: dict[str, int] = {}
        if "scaleAspects" not in extra and "replicaKey" not in extra and self.vnfd_aspects:
            # The package's VNFD declares them (a CSAR's, or the one generated for a chart).
            declared = await self.vnfd_aspects(record.vnfd_id, request.get("flavourId"))
            if declared:
                extra["scaleAspects"] = declared
                if level is None and self.vnfd_default_level:
                    # SOL003: without instantiationLevelId, the VNFD's default level.
                    implicit = await self.vnfd_default_level(
                        record.vnfd_id, request.get("flavourId")
                    )
        aspects = parse_aspects(extra)
        values = extra.get("values", {})
        if not isinstance(values, dict):
            raise Unprocessable(
                "additionalParams values must be an object (the Helm values)",
                details={"field": "additionalParams.values"},
            )
        for aspect_id, target in (level or {}).items():
            # The level's replicas, unless the values already say otherwise (then refused: two
            # answers to one question).
            spec = aspects.get(aspect_id)
            if spec is None:
                raise Unprocessable(
                    f"instantiation level {level_id!r} scales aspect {aspect_id!r}, which this "
                    f"instance does not have (it has: {', '.join(sorted(aspects)) or 'none'})",
                    details={"field": "instantiationLevelId", "aspectId": aspect_id},
                )
            self._check_level(spec, aspect_id, target)
            wanted = replicas_at(spec, target)
            given = get_path(values, spec["replicaKey"])
            if given is not None and given != wanted:
                raise Unprocessable(
                    f"values {spec['replicaKey']}={given!r} contradicts instantiation level "
                    f"{level_id!r} ({aspect_id} at level {target}: {wanted} replicas)",
                    details={"field": "additionalParams.values"},
                )
            values = _merge(values, nested(spec["replicaKey"], wanted))
        for aspect_id, target in implicit.items():
            # The default level fills in what the values leave open (a level the instance's
            # aspect cannot reach is left to level 0, below).
            spec = aspects.get(aspect_id)
            if (
                spec is not None
                and 0 <= target <= int(spec["maxScaleLevel"])
                and get_path(values, spec["replicaKey"]) is None
            ):
                values = _merge(values, nested(spec["replicaKey"], replicas_at(spec, target)))
        for spec in aspects.values():
            # Each aspect starts at the level its given replicas say, or at level 0.
            current = get_path(values, spec["replicaKey"])
            if current is None:
                values = _merge(values, nested(spec["replicaKey"], replicas_at(spec, 0)))
            elif (
                not isinstance(current, int)
                or isinstance(current, bool)
                or current < spec["minReplicas"]
                or (current - spec["minReplicas"]) % spec["replicasPerStep"]
            ):
                raise Unprocessable(
                    f"values {spec['replicaKey']}={current!r} is not a scale level of its aspect "
                    f"(minReplicas {spec['minReplicas']}, replicasPerStep "
                    f"{spec['replicasPerStep']})",
                    details={"field": "additionalParams.values"},
                )
        name = extra.get("releaseName") or _default_name(record)
        try:
            deployment_request = DeploymentRequest.model_validate(
                {
                    "name": name,
                    "namespace": extra.get("namespace", "default"),
                    "packageId": record.vnfd_id,
                    "values": values,
                }
            )
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = {"name": "releaseName"}.get(str(first["loc"][0]), str(first["loc"][0]))
            raise Unprocessable(
                f"additionalParams {field}: {first['msg']}",
                details={"field": f"additionalParams.{field}"},
            ) from None
        async with self._hooks.change(self._store):
            accepted = await self._deployments.create(deployment_request)
            assert isinstance(accepted, Accepted)  # dry_run is never set here
            op_occ = await self._add_op_occ(
                record, LcmOperation.INSTANTIATE, accepted.operation, params
            )
            await self._store.update_vnf_instance(
                vnf_instance_id,
                expected_version=record.version,
                deployment_id=accepted.deployment.deployment_id,
                instantiate_operation_id=accepted.operation.operation_id,
                flavour_id=str(request.get("flavourId")),
                aspects=aspects,
                **(
                    {
                        "properties": merge_patch(
                            record.properties, request["vnfConfigurableProperties"]
                        )
                    }
                    if isinstance(request.get("vnfConfigurableProperties"), dict)
                    else {}
                ),
            )
        return op_occ

    async def terminate(self, vnf_instance_id: str, params: dict[str, Any]) -> OpOccView:
        view = await self._instantiated(vnf_instance_id)
        assert view.deployment is not None
        async with self._hooks.change(self._store):
            accepted = await self._deployments.delete(view.deployment.deployment_id)
            op_occ = await self._add_op_occ(
                view.record, LcmOperation.TERMINATE, accepted.operation, params
            )
            # The package it runs now (after change_vnfpkg) stays its vnfdId when terminated.
            if view.deployment.package_id != view.record.vnfd_id:
                await self._store.update_vnf_instance(
                    vnf_instance_id, vnfd_id=view.deployment.package_id
                )
        return op_occ

    async def scale(
        self, vnf_instance_id: str, kind: str, aspect_id: str, steps: int, params: dict[str, Any]
    ) -> OpOccView:
        view = await self._instantiated(vnf_instance_id)
        assert view.deployment is not None
        spec = self._aspect(view, aspect_id)
        level = level_of(spec, view.deployment.values)
        target = level + steps if kind == "SCALE_OUT" else level - steps
        self._check_level(spec, aspect_id, target)
        values = nested(spec["replicaKey"], replicas_at(spec, target))
        return await self._update(view, LcmOperation.SCALE, DeploymentUpdate(values=values), params)

    async def scale_to_level(
        self, vnf_instance_id: str, levels: dict[str, int], params: dict[str, Any]
    ) -> OpOccView:
        view = await self._instantiated(vnf_instance_id)
        values: dict[str, Any] = {}
        for aspect_id, target in levels.items():
            spec = self._aspect(view, aspect_id)
            self._check_level(spec, aspect_id, target)
            values = _merge(values, nested(spec["replicaKey"], replicas_at(spec, target)))
        return await self._update(
            view, LcmOperation.SCALE_TO_LEVEL, DeploymentUpdate(values=values), params
        )

    async def scale_to_instantiation_level(
        self, vnf_instance_id: str, level_id: str, params: dict[str, Any]
    ) -> OpOccView:
        """Scale to the aspects' levels that instantiation level ``level_id`` of the instance's
        VNFD (its flavour) names."""
        view = await self._instantiated(vnf_instance_id)
        assert view.deployment is not None
        # The package it runs now (after change_vnfpkg, not the one it was created with).
        levels = await self._level(view.deployment.package_id, view.record.flavour_id, level_id)
        return await self.scale_to_level(vnf_instance_id, levels, params)

    async def _level(
        self, package_id: str, flavour_id: str | None, level_id: str
    ) -> dict[str, int]:
        """The aspects' levels (aspect id → scale level) of instantiation level ``level_id`` of
        the package's VNFD (its flavour ``flavour_id``); a 400 naming the declared levels when
        it declares no such level."""
        levels = await self.vnfd_levels(package_id, flavour_id) if self.vnfd_levels else {}
        if level_id not in levels:
            known = ", ".join(sorted(levels)) or "none"
            raise InvalidInput(
                f"the VNFD of {package_id} declares no instantiation level {level_id!r} "
                f"(it declares: {known})",
                details={"field": "instantiationLevelId", "levels": sorted(levels)},
            )
        return levels[level_id]

    async def change_vnfpkg(
        self, vnf_instance_id: str, vnfd_id: str, extra: dict[str, Any], params: dict[str, Any]
    ) -> OpOccView:
        view = await self._instantiated(vnf_instance_id)
        assert view.deployment is not None
        package = await self._store.get_package(vnfd_id)
        if package is None:
            raise Unprocessable(
                f"no package with vnfdId {vnfd_id!r} is onboarded", details={"field": "vnfdId"}
            )
        if package.adapter != view.deployment.adapter:
            raise Unprocessable(
                f"package {vnfd_id} belongs to adapter {package.adapter!r}; the VNF instance "
                f"runs on {view.deployment.adapter!r}",
                details={"field": "vnfdId"},
            )
        values = extra.get("values")
        if values is not None and not isinstance(values, dict):
            raise Unprocessable(
                "additionalParams values must be an object", details={"field": "additionalParams"}
            )
        update = DeploymentUpdate(package_id=vnfd_id, values=values)
        return await self._update(view, LcmOperation.CHANGE_VNFPKG, update, params)

    async def heal(self, vnf_instance_id: str, params: dict[str, Any]) -> OpOccView:
        view = await self._instantiated(vnf_instance_id)
        # No change: the backend applies the release as it is, re-creating what is missing.
        return await self._update(view, LcmOperation.HEAL, DeploymentUpdate(values={}), params)

    # -- occurrence tasks ----------------------------------------------------------------------

    async def _native(self, op_occ_id: str) -> OpOccView:
        view = await self.op_occ(op_occ_id)
        if view.operation is None:
            raise Conflict(
                f"operation occurrence {op_occ_id} ({view.record.operation}) is "
                f"{view.state.value}: nothing to retry, roll back, fail or cancel",
                details={"vnfLcmOpOccId": op_occ_id, "operationState": view.state.value},
            )
        return view

    async def retry(self, op_occ_id: str) -> Operation:
        await self._native(op_occ_id)
        return await self._operations.retry(op_occ_id)

    async def rollback(self, op_occ_id: str) -> Operation:
        await self._native(op_occ_id)
        return await self._operations.rollback(op_occ_id)

    async def fail(self, op_occ_id: str) -> OpOccView:
        await self._native(op_occ_id)
        await self._operations.fail(op_occ_id)
        return await self.op_occ(op_occ_id)

    async def cancel(self, op_occ_id: str) -> Operation:
        await self._native(op_occ_id)
        return await self._operations.cancel(op_occ_id)

    # -- helpers -------------------------------------------------------------------------------

    async def _instantiated(self, vnf_instance_id: str) -> VnfView:
        view = await self.get(vnf_instance_id)
        if not view.instantiated:
            raise Conflict(
                f"VNF instance {vnf_instance_id} is NOT_INSTANTIATED",
                details={
                    "vnfInstanceId": vnf_instance_id,
                    "instantiationState": "NOT_INSTANTIATED",
                },
            )
        return view

    @staticmethod
    def _aspect(view: VnfView, aspect_id: str) -> dict[str, Any]:
        spec = view.record.aspects.get(aspect_id)
        if spec is None:
            raise Unprocessable(
                f"VNF instance {view.record.vnf_instance_id} has no scaling aspect {aspect_id!r} "
                f"(it has {sorted(view.record.aspects)})",
                details={"field": "aspectId", "aspects": sorted(view.record.aspects)},
            )
        return dict(spec)

    @staticmethod
    def _check_level(spec: dict[str, Any], aspect_id: str, target: int) -> None:
        if not 0 <= target <= int(spec["maxScaleLevel"]):
            raise Unprocessable(
                f"aspect {aspect_id!r} would reach scale level {target}, outside 0.."
                f"{spec['maxScaleLevel']}",
                details={"field": "aspectId", "maxScaleLevel": spec["maxScaleLevel"]},
            )

    async def _update(
        self, view: VnfView, operation: str, update: DeploymentUpdate, params: dict[str, Any]
    ) -> OpOccView:
        assert view.deployment is not None
        async with self._hooks.change(self._store):
            accepted = await self._deployments.update(view.deployment.deployment_id, update)
            assert isinstance(accepted, Accepted)  # dry_run is never set here
            return await self._add_op_occ(view.record, operation, accepted.operation, params)

    async def _add_op_occ(
        self,
        record: VnfInstanceRecord,
        operation: str,
        native: Operation,
        params: dict[str, Any],
    ) -> OpOccView:
        op_occ = VnfLcmOpOccRecord(
            op_occ_id=native.operation_id,
            vnf_instance_id=record.vnf_instance_id,
            operation=operation,
            start_time=native.start_time,
            operation_params=params,
            # What its resourceChanges are counted from (nothing before an instantiation).
            resources_before=(
                [] if operation == LcmOperation.INSTANTIATE else list(record.resources or [])
            ),
        )
        await self._store.add_vnf_op_occ(op_occ)
        stored = OperationRecord(
            operation_id=native.operation_id,
            operation_type=native.operation_type,
            deployment_id=native.deployment_id,
            adapter=native.adapter,
            state=native.state,
            start_time=native.start_time,
            state_entered_time=native.state_entered_time,
            params=native.params,
        )
        return OpOccView(op_occ, stored)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch (``null`` removes a key)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _default_name(record: VnfInstanceRecord) -> str:
    name = (record.name or "").lower()
    if _LABEL.match(name) and len(name) <= 40:
        return name
    return f"vnf-{record.vnf_instance_id[:8]}"


__all__ = [
    "DeploymentStatus",
    "LcmOperation",
    "OpOccView",
    "VnfLcmService",
    "VnfView",
    "merge_patch",
    "parse_aspects",
]

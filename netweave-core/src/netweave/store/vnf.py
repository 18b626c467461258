"""What the ETSI SOL003 face (``/vnflcm``) stores beside the native rows: VNF instances (which
exist before instantiation) and VNF LCM operation occurrences (each the native operation it
runs as, plus the SOL003 operation name and request). ``SqlStore`` takes these methods from
:class:`VnfRows`; :class:`VnfStore` is what the rest of netweave may ask."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Row, Table, or_, select, tuple_, update

from netweave.errors import Conflict, NotFound
from netweave.store.records import DeploymentRecord, OperationRecord
from netweave.store.tables import (
    DeploymentRow,
    OperationRow,
    VnfInstanceRow,
    VnfLcmOpOccRow,
    VnfLcmSubscriptionRow,
)

if TYPE_CHECKING:
    from netweave.store.sql import SqlStore

_VI = cast(Table, VnfInstanceRow.__table__)
_VO = cast(Table, VnfLcmOpOccRow.__table__)
_D = cast(Table, DeploymentRow.__table__)
_O = cast(Table, OperationRow.__table__)
_VS = cast(Table, VnfLcmSubscriptionRow.__table__)
#: The largest batch of ids one ``IN`` list carries.
_BATCH = 500
#: The JSON columns of ``vnf_instances`` (``metadata`` as the table names it), which a list
#: may leave unread (``list_vnf_instances(json_columns=...)``).
INSTANCE_JSON_COLUMNS = frozenset({"aspects", "properties", "metadata", "extensions", "resources"})


@dataclass(frozen=True, slots=True)
class ColumnTerm:
    """One condition of a SOL013 filter pushed down to a column of ``vnf_instances`` or
    ``vnf_lcm_op_occs`` (``netweave.api.etsi.sol013.pushdown`` decides which terms can be).
    The rows it keeps are a superset of the filter's matches; the face checks each row's
    representation exactly afterwards.

    ``op``: ``in`` (one of ``values``), ``nin`` (none of them, or NULL), ``cont`` (contains one
    of them), ``present`` (not NULL). ``or_present``: a row whose ``or_present`` column is not
    NULL is kept too (an instantiated VNF's ``vnfdId`` is its deployment's package)."""

    column: str
    op: str
    values: tuple[str, ...] = ()
    or_present: str | None = None


def _condition(table: Table, term: ColumnTerm) -> Any:
    column = table.c[term.column]
    condition: Any
    if term.op == "in":
        condition = column.in_(term.values)
    elif term.op == "nin":
        condition = column.not_in(term.values) | column.is_(None)
    elif term.op == "cont":
        # LIKE with its wildcards escaped; case-insensitive on SQLite: still a superset.
        escaped = [
            v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for v in term.values
        ]
        condition = or_(*(column.like(f"%{v}%", escape="\\") for v in escaped))
    elif term.op == "present":
        condition = column.is_not(None)
    else:
        raise ValueError(f"unknown column condition {term.op!r}")
    if term.or_present is not None:
        condition = condition | table.c[term.or_present].is_not(None)
    return condition


@dataclass(slots=True)
class VnfInstanceRecord:
    vnf_instance_id: str
    vnfd_id: str
    created_at: datetime
    name: str | None = None
    description: str | None = None
    deployment_id: str | None = None
    instantiate_operation_id: str | None = None
    flavour_id: str | None = None
    aspects: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    instance_metadata: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    #: The backend's resources after the last operation ended (``None``: never reported).
    resources: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class VnfLcmOpOccRecord:
    op_occ_id: str
    vnf_instance_id: str
    operation: str
    start_time: datetime
    operation_params: dict[str, Any] = field(default_factory=dict)
    changed_info: dict[str, Any] | None = None
    #: Only for occurrences without a native operation (MODIFY_INFO).
    state: str | None = None
    #: The instance's resources when it started; SOL003 ``resourceChanges`` since then.
    resources_before: list[dict[str, Any]] | None = None
    resource_changes: dict[str, Any] | None = None
    #: The last error (ProblemDetails), kept after the native operation cleared its own.
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class VnfLcmSubscriptionRecord:
    """A SOL003 ``LccnSubscription`` or a SOL005 ``PkgmSubscription`` (``api``; see
    ``VnfLcmSubscriptionRow``)."""

    subscription_id: str
    api_major: int
    api_base: str
    callback_uri: str
    created_at: datetime
    filter: dict[str, Any] = field(default_factory=dict)
    verbosity: str = "FULL"
    manager: str | None = None
    #: Secrets sealed (``netweave.notifications.sealing``); never returned.
    authentication: dict[str, Any] | None = None
    #: ``vnflcm`` or ``vnfpkgm``: the interface it was made on.
    api: str = "vnflcm"


#: The record's field of each column whose name differs.
_FIELD_OF = {"metadata": "instance_metadata"}


def _instance(row: Row[Any]) -> VnfInstanceRecord:
    data = dict(row._mapping)
    if "metadata" in data:  # a list may leave it unread (json_columns)
        data["instance_metadata"] = data.pop("metadata")
    return VnfInstanceRecord(**data)


def _instance_values(record: VnfInstanceRecord) -> dict[str, Any]:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    values["metadata"] = values.pop("instance_metadata")
    return values


def _op_occ(row: Row[Any]) -> VnfLcmOpOccRecord:
    return VnfLcmOpOccRecord(**row._mapping)


def _subscription(row: Row[Any]) -> VnfLcmSubscriptionRecord:
    return VnfLcmSubscriptionRecord(**row._mapping)


class VnfStore(Protocol):
    async def add_vnf_instance(self, record: VnfInstanceRecord) -> None: ...

    async def get_vnf_instance(self, vnf_instance_id: str) -> VnfInstanceRecord | None: ...

    async def update_vnf_instance(
        self, vnf_instance_id: str, *, expected_version: int | None = None, **changes: Any
    ) -> VnfInstanceRecord:
        """Set ``changes`` and bump ``version``; with ``expected_version``, Conflict when the
        stored version differs (If-Match). NotFound when missing."""

    async def delete_vnf_instance(self, vnf_instance_id: str) -> None: ...

    async def list_vnf_instances(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
        json_columns: Collection[str] | None = None,
    ) -> list[VnfInstanceRecord]:
        """Ordered by (created_at, id), strictly after ``after``, each of ``where`` holding.

        ``json_columns``: which of :data:`INSTANCE_JSON_COLUMNS` to read (``None``: all); the
        others are left at their defaults in the records, so a caller asks for each one it
        renders (a list page mostly needs none: decoding them was most of its cost)."""

    async def add_vnf_op_occ(self, record: VnfLcmOpOccRecord) -> None: ...

    async def get_vnf_op_occ(self, op_occ_id: str) -> VnfLcmOpOccRecord | None: ...

    async def update_vnf_op_occ(self, op_occ_id: str, **changes: Any) -> VnfLcmOpOccRecord: ...

    async def list_vnf_op_occs(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
    ) -> list[VnfLcmOpOccRecord]:
        """Ordered by (start_time, id), strictly after ``after``, each of ``where`` holding."""

    async def deployments_and_operations(
        self, deployment_ids: Sequence[str], operation_ids: Sequence[str]
    ) -> tuple[dict[str, DeploymentRecord], dict[str, OperationRecord]]:
        """The deployments and operations with these ids that exist (one read each batch)."""

    async def vnf_instance_of_deployment(self, deployment_id: str) -> VnfInstanceRecord | None:
        """The VNF instance whose deployment this is, if any."""

    async def set_vnf_instance_resources(
        self, vnf_instance_id: str, resources: list[dict[str, Any]]
    ) -> None:
        """Record what the backend reported (no version bump: not a change of the record's
        own information)."""

    async def add_vnf_subscription(self, record: VnfLcmSubscriptionRecord) -> None: ...

    async def get_vnf_subscription(
        self, subscription_id: str
    ) -> VnfLcmSubscriptionRecord | None: ...

    async def list_vnf_subscriptions(
        self, *, after: tuple[datetime, str] | None, limit: int, api: str = "vnflcm"
    ) -> list[VnfLcmSubscriptionRecord]:
        """Those of interface ``api``, ordered by (created_at, id), strictly after ``after``."""

    async def delete_vnf_subscription(self, subscription_id: str) -> None: ...


def _sql(rows: VnfRows) -> SqlStore:
    """The store these rows are part of (``VnfRows`` is a mixin of ``SqlStore`` only)."""
    return cast("SqlStore", rows)


class VnfRows:
    """``SqlStore``'s implementation of :class:`VnfStore` (a mixin on its helpers)."""

    async def add_vnf_instance(self, record: VnfInstanceRecord) -> None:
        await _sql(self)._insert(
            f"VNF instance {record.vnf_instance_id!r}", _VI, _instance_values(record)
        )

    async def get_vnf_instance(self, vnf_instance_id: str) -> VnfInstanceRecord | None:
        store = _sql(self)
        row = await store._get_by("reading a VNF instance", _VI, "vnf_instance_id", vnf_instance_id)
        return None if row is None else _instance(row)

    async def update_vnf_instance(
        self,
        vnf_instance_id: str,
        *,
        expected_version: int | None = None,
        **changes: Any,
    ) -> VnfInstanceRecord:
        what = f"VNF instance {vnf_instance_id!r}"
        if "instance_metadata" in changes:
            changes["metadata"] = changes.pop("instance_metadata")
        async with _sql(self).transaction():
            current = await _sql(self)._get_by(what, _VI, "vnf_instance_id", vnf_instance_id)
            if current is None:
                raise NotFound(f"{what} not found")
            version = int(current._mapping["version"])
            if expected_version is not None and version != expected_version:
                raise Conflict(
                    f"{what} is at version {version}, not {expected_version}",
                    details={"version": version},
                )
            changes["version"] = version + 1
            row = await _sql(self)._update(what, _VI, ("vnf_instance_id", vnf_instance_id), changes)
        return _instance(row)

    async def delete_vnf_instance(self, vnf_instance_id: str) -> None:
        await _sql(self)._delete(
            f"VNF instance {vnf_instance_id!r}", _VI, _VI.c.vnf_instance_id == vnf_instance_id
        )

    async def list_vnf_instances(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
        json_columns: Collection[str] | None = None,
    ) -> list[VnfInstanceRecord]:
        from netweave.store.engine import _translate

        columns = [
            c
            for c in _VI.c
            if c.name not in INSTANCE_JSON_COLUMNS or json_columns is None or c.name in json_columns
        ]
        query = select(*columns).order_by(_VI.c.created_at, _VI.c.vnf_instance_id).limit(limit)
        for term in where:
            query = query.where(_condition(_VI, term))
        if after is not None:
            # A row-value comparison: both SQLite and PostgreSQL seek the (created_at, id)
            # index to it, whatever else the query filters on.
            query = query.where(
                tuple_(_VI.c.created_at, _VI.c.vnf_instance_id) > (after[0], after[1])
            )
        with _translate("listing VNF instances"):
            async with _sql(self)._conn(write=False) as conn:
                result = await conn.execute(query)
                # The fields named once per page and the rows fetched at once: per row, a
                # mapping and a fetch call cost more than SQLite's own reading.
                names = [_FIELD_OF.get(c.name, c.name) for c in columns]
                return [
                    VnfInstanceRecord(**dict(zip(names, row, strict=True))) for row in result.all()
                ]

    async def add_vnf_op_occ(self, record: VnfLcmOpOccRecord) -> None:
        values = {f.name: getattr(record, f.name) for f in fields(record)}
        await _sql(self)._insert(f"VNF LCM operation occurrence {record.op_occ_id!r}", _VO, values)

    async def get_vnf_op_occ(self, op_occ_id: str) -> VnfLcmOpOccRecord | None:
        row = await _sql(self)._get_by("reading a VNF LCM op occ", _VO, "op_occ_id", op_occ_id)
        return None if row is None else _op_occ(row)

    async def update_vnf_op_occ(self, op_occ_id: str, **changes: Any) -> VnfLcmOpOccRecord:
        row = await _sql(self)._update(
            f"VNF LCM operation occurrence {op_occ_id!r}", _VO, ("op_occ_id", op_occ_id), changes
        )
        return _op_occ(row)

    async def list_vnf_op_occs(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
    ) -> list[VnfLcmOpOccRecord]:
        from netweave.store.engine import _translate

        query = select(_VO).order_by(_VO.c.start_time, _VO.c.op_occ_id).limit(limit)
        for term in where:
            query = query.where(_condition(_VO, term))
        if after is not None:
            stamp, key = after
            query = query.where(
                (_VO.c.start_time > stamp) | ((_VO.c.start_time == stamp) & (_VO.c.op_occ_id > key))
            )
        with _translate("listing VNF LCM op occs"):
            async with _sql(self)._conn(write=False) as conn:
                return [_op_occ(row) for row in await conn.execute(query)]

    async def deployments_and_operations(
        self, deployment_ids: Sequence[str], operation_ids: Sequence[str]
    ) -> tuple[dict[str, DeploymentRecord], dict[str, OperationRecord]]:
        from netweave.store.deployments import _deployment
        from netweave.store.engine import _translate
        from netweave.store.operations import _operation

        deployments: dict[str, DeploymentRecord] = {}
        operations: dict[str, OperationRecord] = {}
        wanted_d = sorted(set(deployment_ids))
        wanted_o = sorted(set(operation_ids))
        if not wanted_d and not wanted_o:
            return deployments, operations  # no transaction to read nothing (not instantiated)
        with _translate("reading VNF instances' deployments"):
            async with _sql(self)._conn(write=False) as conn:
                for start in range(0, len(wanted_d), _BATCH):
                    chunk = wanted_d[start : start + _BATCH]
                    for row in await conn.execute(select(_D).where(_D.c.deployment_id.in_(chunk))):
                        record = _deployment(row)
                        deployments[record.deployment_id] = record
                for start in range(0, len(wanted_o), _BATCH):
                    chunk = wanted_o[start : start + _BATCH]
                    for row in await conn.execute(select(_O).where(_O.c.operation_id.in_(chunk))):
                        operation = _operation(row)
                        operations[operation.operation_id] = operation
        return deployments, operations

    async def vnf_instance_of_deployment(self, deployment_id: str) -> VnfInstanceRecord | None:
        store = _sql(self)
        row = await store._get_by(
            "reading a deployment's VNF instance", _VI, "deployment_id", deployment_id
        )
        return None if row is None else _instance(row)

    async def set_vnf_instance_resources(
        self, vnf_instance_id: str, resources: list[dict[str, Any]]
    ) -> None:
        from netweave.store.engine import _translate

        with _translate("recording a VNF instance's resources"):
            async with _sql(self)._conn(write=True) as conn:
                await conn.execute(
                    update(_VI)
                    .where(_VI.c.vnf_instance_id == vnf_instance_id)
                    .values(resources=resources)
                )

    # -- subscriptions (tracked with the native ones: the notification recorder's list of
    # -- subscriptions is kept per write count, see ``SqlStore.subscription_writes``) ---------

    async def add_vnf_subscription(self, record: VnfLcmSubscriptionRecord) -> None:
        store = _sql(self)
        values = {f.name: getattr(record, f.name) for f in fields(record)}
        with store._tracking(store._subscription_writes):
            await store._insert(f"subscription {record.subscription_id!r}", _VS, values)

    async def get_vnf_subscription(self, subscription_id: str) -> VnfLcmSubscriptionRecord | None:
        row = await _sql(self)._get_by(
            "reading a subscription", _VS, "subscription_id", subscription_id
        )
        return None if row is None else _subscription(row)

    async def list_vnf_subscriptions(
        self, *, after: tuple[datetime, str] | None, limit: int, api: str = "vnflcm"
    ) -> list[VnfLcmSubscriptionRecord]:
        from netweave.store.engine import _translate

        query = (
            select(_VS)
            .where(_VS.c.api == api)
            .order_by(_VS.c.created_at, _VS.c.subscription_id)
            .limit(limit)
        )
        if after is not None:
            stamp, key = after
            query = query.where(
                (_VS.c.created_at > stamp)
                | ((_VS.c.created_at == stamp) & (_VS.c.subscription_id > key))
            )
        with _translate("listing subscriptions"):
            async with _sql(self)._conn(write=False) as conn:
                return [_subscription(row) for row in await conn.execute(query)]

    async def delete_vnf_subscription(self, subscription_id: str) -> None:
        store = _sql(self)
        with store._tracking(store._subscription_writes):
            await store._delete(
                f"subscription {subscription_id!r}",
                _VS,
                _VS.c.subscription_id == subscription_id,
            )


__all__ = [
    "ColumnTerm",
    "VnfInstanceRecord",
    "VnfLcmOpOccRecord",
    "VnfLcmSubscriptionRecord",
    "VnfRows",
    "VnfStore",
]

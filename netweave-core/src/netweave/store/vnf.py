"""What the ETSI SOL003 face (``/vnflcm``) stores beside the native rows: VNF instances (which
exist before instantiation) and VNF LCM operation occurrences (each the native operation it
runs as, plus the SOL003 operation name and request). ``SqlStore`` takes these methods from
:class:`VnfRows`; :class:`VnfStore` is what the rest of netweave may ask."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import (
    Integer,
    Row,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.sql import Select

from netweave.errors import Conflict, NotFound
from netweave.models import OperationState
from netweave.store.records import DeploymentRecord, OperationRecord
from netweave.store.tables import (
    DeploymentRow,
    OperationRow,
    PackageRow,
    UTCDateTime,
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
_P = cast(Table, PackageRow.__table__)
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
    of them), ``present`` (not NULL), ``json_in`` (the JSON column may hold one of them at
    ``path``: SQLite only, elsewhere every row is kept). ``or_present``: a row whose
    ``or_present`` column is not NULL is kept too.

    In a joined page (``VnfStore.vnf_instance_summaries``) ``in`` and ``nin`` are exact and
    ``column`` names one of its expressions."""

    column: str
    op: str
    values: tuple[str, ...] = ()
    or_present: str | None = None
    path: tuple[str, ...] = ()


def _condition(table: Table, term: ColumnTerm, dialect: str = "sqlite") -> Any:
    column = table.c[term.column]
    condition: Any
    if term.op == "json_in":
        condition = _json_condition(table, term) if dialect == "sqlite" else true()
    elif term.op == "in":
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


def _json_path(keys: Sequence[str]) -> str | None:
    """SQLite's JSON path of ``keys`` (quoted labels), or None for a key it cannot quote."""
    if any('"' in k or "\\" in k for k in keys):
        return None
    return "$" + "".join(f'."{k}"' for k in keys)


def _json_condition(table: Table, term: ColumnTerm) -> Any:
    """Rows whose JSON column may hold one of ``values`` at ``path`` as SOL013 compares them
    (the string; the number; the boolean), or an array on the way (an array matches when an
    element does: Python decides). A superset, never exact."""
    column = table.c[term.column]
    path = _json_path(term.path)
    if path is None or not term.path:
        return true()
    leaf = func.json_extract(column, path)
    options: list[Any] = []
    for value in term.values:
        options.append(leaf == value)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            options.append(leaf == number)
        if value in {"true", "false"}:
            options.append(func.json_type(column, path) == value)
    for end in range(1, len(term.path) + 1):
        options.append(func.json_type(column, _json_path(term.path[:end])) == "array")
    return or_(*options)


def _text(value: str) -> Any:
    """A constant string written into the statement (the driver-level read binds only the
    parameters the statement names)."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


_SQLITE = SQLiteDialect_pysqlite()
#: A time as SQLite stores it (what the driver is given), and back.
_AT_TYPE = UTCDateTime().dialect_impl(_SQLITE)
_stored_at = _AT_TYPE.bind_processor(_SQLITE)
_read_at = _AT_TYPE.result_processor(_SQLITE, None)
assert _stored_at is not None
assert _read_at is not None
_STORED_AT: Callable[[Any], Any] = _stored_at
_READ_AT: Callable[[Any], Any] = _read_at
#: INSTANTIATED: a deployment, and its instantiate operation COMPLETED (or given up as FAILED:
#: resources remain); as ``netweave.services.vnflcm.VnfView.instantiated``.
_INSTANTIATED = and_(
    _D.c.deployment_id.is_not(None),
    _O.c.state.in_([_text(OperationState.COMPLETED.value), _text(OperationState.FAILED.value)]),
)
#: The columns and expressions of a joined page by the names its exact terms use
#: (``netweave.api.etsi.render.VNF_INSTANCE_EXACT``), each the value the face renders.
_SUMMARY_EXPRESSIONS: dict[str, Any] = {
    "vnf_instance_id": _VI.c.vnf_instance_id,
    "name": _VI.c.name,
    "description": _VI.c.description,
    "vnfd_id": func.coalesce(_D.c.package_id, _VI.c.vnfd_id),
    "instantiation_state": case(
        (_INSTANTIATED, _text("INSTANTIATED")), else_=_text("NOT_INSTANTIATED")
    ),
    "provider": func.coalesce(_P.c.provider, _text("")),
    "product": func.coalesce(_P.c.name, _text("")),
    "software_version": func.coalesce(_P.c.version, _text("")),
}
#: Position of ``created_at`` in a joined page's rows (after the rendered ones).
_SUMMARY_AT = 6
#: A row's stamp (see :class:`StampPage`), one string: its id, its version (bumped by every
#: write of the row: name, description, vnfdId, deployment) and whether it is instantiated
#: (which follows its deployment and instantiate operation, not the row).
_STAMP = (
    _VI.c.vnf_instance_id
    + _text(" ")
    + sql_cast(_VI.c.version, String)
    + case((_INSTANTIATED, _text(" I")), else_=_text(" N"))
)
#: The expressions that read the package (joined only when a term or the adapter needs it:
#: otherwise the page's few packages are read once each, not joined per row).
_PACKAGE_EXPRESSIONS = frozenset({"provider", "product", "software_version"})


@functools.lru_cache(maxsize=128)
def _summary_statement(
    shape: tuple[tuple[str, str, int], ...], after: bool, adapter: bool, stamps: bool = False
) -> Select[Any]:
    """The joined page's statement for a filter of this shape ((column, op, values) of each
    term), built once per shape so that its compiled SQL is cached too. Parameters:
    ``w{i}_{j}`` (the j-th value of the i-th term), ``after_at``/``after_id``, ``adapter``,
    ``page_limit``, ``page_offset``. ``stamps``: each row's stamp (see :class:`StampPage`)
    instead of the rendered columns."""
    joined = _VI.outerjoin(_D, _D.c.deployment_id == _VI.c.deployment_id).outerjoin(
        _O, _O.c.operation_id == _VI.c.instantiate_operation_id
    )
    if adapter or any(column in _PACKAGE_EXPRESSIONS for column, _, _ in shape):
        joined = joined.outerjoin(_P, _P.c.package_id == _SUMMARY_EXPRESSIONS["vnfd_id"])
    columns = (
        (_STAMP, _SUMMARY_EXPRESSIONS["vnfd_id"])
        if stamps
        else (
            _VI.c.vnf_instance_id,
            _VI.c.name,
            _VI.c.description,
            _SUMMARY_EXPRESSIONS["vnfd_id"],
            _VI.c.deployment_id.is_not(None),
            _INSTANTIATED,
            _VI.c.created_at,
            _STAMP,
        )
    )
    query = (
        select(*columns)
        .select_from(joined)
        .order_by(_VI.c.created_at, _VI.c.vnf_instance_id)
        .limit(bindparam("page_limit", type_=Integer))
        # Named, or SQLite's compiler adds an OFFSET parameter of its own.
        .offset(bindparam("page_offset", type_=Integer))
    )
    for i, (column, op, count) in enumerate(shape):
        expression = _SUMMARY_EXPRESSIONS[column]
        values = [bindparam(f"w{i}_{j}", type_=String) for j in range(count)]
        if op == "in":
            query = query.where(expression.in_(values))
            if column == "vnfd_id":
                # The stored column is the package the deployment runs (the gateway keeps it
                # so): the same test on it is a range of its index, in list order.
                query = query.where(_VI.c.vnfd_id.in_(values))
        elif op == "nin":
            query = query.where(expression.not_in(values) | expression.is_(None))
        else:
            raise ValueError(f"not an exact condition: {op!r}")
    if after:
        query = query.where(
            tuple_(_VI.c.created_at, _VI.c.vnf_instance_id)
            > tuple_(bindparam("after_at", type_=UTCDateTime()), bindparam("after_id"))
        )
    if adapter:
        # The deployment manager owning the instance: its deployment's, else its package's.
        query = query.where(func.coalesce(_D.c.adapter, _P.c.adapter) == bindparam("adapter"))
    return query


#: What a joined page holds of each instance's package: (present, provider, product name,
#: version); (False, None, "", "") when the package is gone.
SummaryPackage = tuple[bool, str | None, str, str]


@dataclass(frozen=True, slots=True)
class SummaryPage:
    """A joined list page (``VnfStore.vnf_instance_summaries``). ``rows``: (id, name,
    description, vnfdId, has a deployment, instantiated, created_at as read, stamp; truthy
    flags), each a plain tuple as read; ``packages``: the package of each vnfdId the rows
    name; ``more``: whether rows follow."""

    rows: Sequence[tuple[Any, ...]]
    packages: dict[str, SummaryPackage]
    more: bool
    #: Whether ``created_at`` is as SQLite stores it (a string), not a datetime.
    raw: bool = False

    def key(self, row: tuple[Any, ...]) -> tuple[datetime, str]:
        """A row's paging key (created_at, id)."""
        at = row[_SUMMARY_AT]
        return (_READ_AT(at) if self.raw else at, row[0])

    @property
    def last(self) -> tuple[datetime, str] | None:
        """The last row's key when more rows follow."""
        return self.key(self.rows[-1]) if self.more else None

    @staticmethod
    def stamp(row: tuple[Any, ...]) -> str:
        """A row's stamp, as :class:`StampPage` reads it."""
        return cast(str, row[7])


@dataclass(frozen=True, slots=True)
class StampPage:
    """The rows of a joined list page reduced to what changes what the face renders of them
    (``VnfStore.vnf_instance_stamps``): ``stamps``: (stamp, vnfdId) of each row, the stamp one
    string of the instance's id, version and instantiation state. Every write of a VNF instance
    bumps its version; the vnfdId and the state follow its deployment and instantiate
    operation. So an item rendered from a row with the same stamp, vnfdId and package is that
    row's item: a page of kept items is checked by reading two short strings a row (from the
    index alone, on SQLite), not every rendered column."""

    stamps: Sequence[tuple[str, str]]
    packages: dict[str, SummaryPackage]
    more: bool


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

    async def vnf_instance_summaries(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None = None,
    ) -> SummaryPage:
        """One read of a list page's plain attributes, joined with each instance's deployment
        and instantiate operation, at most ``limit`` rows ordered by (created_at, id) strictly
        after ``after``, with the package of each vnfdId they name (see :class:`SummaryPage`).
        ``where``: ``in``/``nin`` terms on the expressions the face renders, evaluated exactly;
        ``adapter``: only the instances of that deployment manager."""

    async def vnf_instance_stamps(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None = None,
    ) -> StampPage:
        """The stamps of the rows :meth:`vnf_instance_summaries` would answer with the same
        arguments (see :class:`StampPage`)."""

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
        columns = [
            c
            for c in _VI.c
            if c.name not in INSTANCE_JSON_COLUMNS or json_columns is None or c.name in json_columns
        ]
        query = select(*columns).order_by(_VI.c.created_at, _VI.c.vnf_instance_id).limit(limit)
        for term in where:
            query = query.where(_condition(_VI, term, _sql(self).dialect))
        if after is not None:
            # A row-value comparison: both SQLite and PostgreSQL seek the (created_at, id)
            # index to it, whatever else the query filters on.
            query = query.where(
                tuple_(_VI.c.created_at, _VI.c.vnf_instance_id) > (after[0], after[1])
            )
        # On SQLite outside a transaction: the kept reader, no BEGIN/COMMIT around the page.
        rows = await _sql(self)._read("listing VNF instances", query, {})
        # The fields named once per page and the rows fetched at once: per row, a mapping and
        # a fetch call cost more than SQLite's own reading.
        names = [_FIELD_OF.get(c.name, c.name) for c in columns]
        return [VnfInstanceRecord(**dict(zip(names, row, strict=True))) for row in rows]

    async def vnf_instance_summaries(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None = None,
    ) -> SummaryPage:
        rows, raw = await self._summary_rows(after, limit, where, adapter, stamps=False)
        more = len(rows) > limit
        page: Sequence[tuple[Any, ...]] = rows[:limit] if more else rows
        packages = await self._summary_packages({row[3] for row in page})
        return SummaryPage(page, packages, more, raw)

    async def vnf_instance_stamps(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None = None,
    ) -> StampPage:
        rows, _ = await self._summary_rows(after, limit, where, adapter, stamps=True)
        more = len(rows) > limit
        page = cast("Sequence[tuple[str, str]]", rows[:limit] if more else rows)
        packages = await self._summary_packages({row[1] for row in page})
        return StampPage(page, packages, more)

    async def _summary_rows(
        self,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm],
        adapter: str | None,
        *,
        stamps: bool,
    ) -> tuple[Sequence[tuple[Any, ...]], bool]:
        """A joined page's rows, one more than ``limit`` if more follow, and whether they are
        the driver's own (``created_at`` as SQLite stores it)."""
        store = _sql(self)
        shape = tuple((t.column, t.op, len(t.values)) for t in where)
        statement = _summary_statement(shape, after is not None, adapter is not None, stamps)
        params: dict[str, Any] = {"page_limit": limit + 1, "page_offset": 0}
        for i, term in enumerate(where):
            for j, value in enumerate(term.values):
                params[f"w{i}_{j}"] = value
        if adapter is not None:
            params["adapter"] = adapter
        if after is not None:
            params["after_at"], params["after_id"] = after
        what = "listing VNF instances"
        # On SQLite, the driver's own rows (no SQLAlchemy row or type processing: a page is
        # plain strings), given the time as SQLite stores it.
        rows: Sequence[Any] | None = store._driver_rows(
            what,
            statement,
            params if after is None else {**params, "after_at": _STORED_AT(after[0])},
        )
        if rows is not None:
            return rows, True
        return [tuple(row) for row in await store._read(what, statement, params)], False

    async def _summary_packages(self, vnfd_ids: Collection[str]) -> dict[str, SummaryPackage]:
        """The package of each vnfdId, once per page (the store caches package reads; only
        read here, so the cached record itself, not a copy)."""
        packages: dict[str, SummaryPackage] = {}
        for vnfd_id in vnfd_ids:
            package = await _sql(self).read_package(vnfd_id)
            packages[vnfd_id] = (
                (True, package.provider, package.name, package.version)
                if package is not None
                else (False, None, "", "")
            )
        return packages

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
    "StampPage",
    "SummaryPackage",
    "SummaryPage",
    "VnfInstanceRecord",
    "VnfLcmOpOccRecord",
    "VnfLcmSubscriptionRecord",
    "VnfRows",
    "VnfStore",
]

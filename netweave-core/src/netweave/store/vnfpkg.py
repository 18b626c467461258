"""What the ETSI SOL005 face (``vnfpkgm``) stores beside the native package rows (see
``VnfPackageRow``). ``SqlStore`` takes these methods from :class:`VnfPackageRows`;
:class:`VnfPackageStore` is what the rest of netweave may ask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import (
    Row,
    Select,
    String,
    Table,
    exists,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy import cast as sql_cast

from netweave.errors import Conflict, NotFound
from netweave.store.records import PackageRecord
from netweave.store.tables import PackageRow, VnfPackageRow
from netweave.store.vnf import ColumnTerm, _condition

if TYPE_CHECKING:
    from netweave.store.sql import SqlStore

_VP = cast(Table, VnfPackageRow.__table__)
_P = cast(Table, PackageRow.__table__)
#: The columns of the VNF package listing a SOL013 filter may be pushed down to (see
#: :meth:`VnfPackageStore.vnf_package_page`): ``vnf_pkg_id``, ``vnfd_id`` (the native
#: package's id, NULL before onboarding), ``onboarding_state``, ``name`` (the native package's
#: name) and ``kind`` (``row`` for a package with a row of its own: its product name may come
#: from its VNFD rather than ``name``; NULL for a native package without one).
PAGE_COLUMNS = frozenset({"vnf_pkg_id", "vnfd_id", "onboarding_state", "name", "kind"})
_BATCH = 500


@dataclass(slots=True)
class VnfPackageRecord:
    vnf_pkg_id: str
    onboarding_state: str
    created_at: datetime
    updated_at: datetime
    package_id: str | None = None
    user_defined_data: dict[str, Any] = field(default_factory=dict)
    vnfd: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    onboarding_failure: dict[str, Any] | None = None
    version: int = 1


def _record(row: Row[Any]) -> VnfPackageRecord:
    return VnfPackageRecord(**row._mapping)


@dataclass(slots=True)
class VnfPackageEntry:
    """One VNF package of a listing: its row (if any), its native package (once onboarded)
    and whether deployments use that."""

    vnf_pkg_id: str
    created_at: datetime
    record: VnfPackageRecord | None
    package: PackageRecord | None
    in_use: bool


class VnfPackageStore(Protocol):
    async def add_vnf_package(self, record: VnfPackageRecord) -> None:
        """AlreadyExists when the id (or the native package it names) has a row already."""

    async def get_vnf_package(self, vnf_pkg_id: str) -> VnfPackageRecord | None: ...

    async def vnf_package_of(self, package_id: str) -> VnfPackageRecord | None:
        """The row that names the native package ``package_id``, if any."""

    async def update_vnf_package(
        self,
        vnf_pkg_id: str,
        *,
        expected_version: int | None = None,
        expected_state: frozenset[str] | None = None,
        **changes: Any,
    ) -> VnfPackageRecord:
        """Set ``changes`` and bump ``version``, in one transaction. Conflict when
        ``expected_version`` differs (details ``version``) or the onboarding state is not one
        of ``expected_state`` (details ``onboardingState``); NotFound when missing."""

    async def delete_vnf_package(self, vnf_pkg_id: str) -> None: ...

    async def vnf_package_page(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
    ) -> list[VnfPackageEntry]:
        """VNF packages ordered by (created_at, id), strictly after ``after``, each of ``where``
        holding (on :data:`PAGE_COLUMNS`): the rows, and the native packages no row names
        (ONBOARDED, their id their own); a row whose onboarded native package was deleted is
        left out. One page costs a few indexed reads, whatever the catalogue's size."""


def _page_query(
    after: tuple[datetime, str] | None, limit: int, where: Sequence[ColumnTerm]
) -> Select[Any]:
    """The keys (id, created_at, kind) of one page of the VNF package listing."""
    rows = (
        select(
            _VP.c.vnf_pkg_id,
            _VP.c.created_at,
            _VP.c.package_id.label("vnfd_id"),
            _VP.c.onboarding_state,
            _P.c.name,
            literal("row", String).label("kind"),
        )
        .select_from(_VP.outerjoin(_P, _P.c.package_id == _VP.c.package_id))
        .where(or_(_VP.c.onboarding_state != "ONBOARDED", _P.c.package_id.is_not(None)))
    )
    natives = select(
        _P.c.package_id.label("vnf_pkg_id"),
        _P.c.created_at,
        _P.c.package_id.label("vnfd_id"),
        literal("ONBOARDED", String).label("onboarding_state"),
        _P.c.name,
        sql_cast(null(), String).label("kind"),
    ).where(~exists().where(_VP.c.package_id == _P.c.package_id))
    # Each part is ordered, filtered and limited on its own (an index range each: the
    # (created_at, id) indexes of both tables), then the two short lists are merged.
    parts = []
    for name, part in (("vnf_package_rows", rows), ("vnf_package_natives", natives)):
        listing = part.subquery(name)
        query = (
            select(listing.c.vnf_pkg_id, listing.c.created_at, listing.c.kind)
            .order_by(listing.c.created_at, listing.c.vnf_pkg_id)
            .limit(limit)
        )
        for term in where:
            if term.column not in PAGE_COLUMNS:
                raise ValueError(f"not a column of the VNF package listing: {term.column}")
            query = query.where(_condition(cast(Table, listing), term))
        if after is not None:
            query = query.where(
                tuple_(listing.c.created_at, listing.c.vnf_pkg_id) > (after[0], after[1])
            )
        parts.append(select(query.subquery(f"{name}_page")))
    merged = union_all(*parts).subquery("vnf_package_listing")
    query = (
        select(merged.c.vnf_pkg_id, merged.c.created_at, merged.c.kind)
        .order_by(merged.c.created_at, merged.c.vnf_pkg_id)
        .limit(limit)
    )
    return query


def _sql(rows: VnfPackageRows) -> SqlStore:
    return cast("SqlStore", rows)


class VnfPackageRows:
    """``SqlStore``'s implementation of :class:`VnfPackageStore` (a mixin on its helpers)."""

    async def add_vnf_package(self, record: VnfPackageRecord) -> None:
        values = {f.name: getattr(record, f.name) for f in fields(record)}
        await _sql(self)._insert(f"VNF package {record.vnf_pkg_id!r}", _VP, values)

    async def get_vnf_package(self, vnf_pkg_id: str) -> VnfPackageRecord | None:
        row = await _sql(self)._get_by("reading a VNF package", _VP, "vnf_pkg_id", vnf_pkg_id)
        return None if row is None else _record(row)

    async def vnf_package_of(self, package_id: str) -> VnfPackageRecord | None:
        row = await _sql(self)._get_by("reading a VNF package", _VP, "package_id", package_id)
        return None if row is None else _record(row)

    async def update_vnf_package(
        self,
        vnf_pkg_id: str,
        *,
        expected_version: int | None = None,
        expected_state: frozenset[str] | None = None,
        **changes: Any,
    ) -> VnfPackageRecord:
        what = f"VNF package {vnf_pkg_id!r}"
        store = _sql(self)
        async with store.transaction():
            current = await store._get_by(what, _VP, "vnf_pkg_id", vnf_pkg_id)
            if current is None:
                raise NotFound(f"{what} not found", details={"vnfPkgId": vnf_pkg_id})
            version = int(current._mapping["version"])
            if expected_version is not None and version != expected_version:
                raise Conflict(
                    f"{what} is at version {version}, not {expected_version}",
                    details={"version": version},
                )
            state = str(current._mapping["onboarding_state"])
            if expected_state is not None and state not in expected_state:
                raise Conflict(
                    f"{what} is {state}, not {' or '.join(sorted(expected_state))}",
                    details={"onboardingState": state, "vnfPkgId": vnf_pkg_id},
                )
            changes["version"] = version + 1
            row = await store._update(what, _VP, ("vnf_pkg_id", vnf_pkg_id), changes)
        return _record(row)

    async def delete_vnf_package(self, vnf_pkg_id: str) -> None:
        await _sql(self)._delete(f"VNF package {vnf_pkg_id!r}", _VP, _VP.c.vnf_pkg_id == vnf_pkg_id)

    async def vnf_package_page(
        self,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
        where: Sequence[ColumnTerm] = (),
    ) -> list[VnfPackageEntry]:
        from netweave.store.engine import _translate
        from netweave.store.packages import _package

        query = _page_query(after, limit, where)
        store = _sql(self)
        with _translate("listing VNF packages"):
            async with store._conn(write=False) as conn:
                keys = list(await conn.execute(query))
                row_ids = [k.vnf_pkg_id for k in keys if k.kind is not None]
                records: dict[str, VnfPackageRecord] = {}
                for start in range(0, len(row_ids), _BATCH):
                    chunk = row_ids[start : start + _BATCH]
                    for row in await conn.execute(select(_VP).where(_VP.c.vnf_pkg_id.in_(chunk))):
                        read = _record(row)
                        records[read.vnf_pkg_id] = read
                # A row deleted meanwhile (read in two statements) names no package.
                package_ids = [
                    (
                        getattr(records.get(k.vnf_pkg_id), "package_id", None)
                        if k.kind is not None
                        else k.vnf_pkg_id
                    )
                    for k in keys
                ]
                wanted = [p for p in package_ids if p is not None]
                packages: dict[str, PackageRecord] = {}
                for start in range(0, len(wanted), _BATCH):
                    chunk = wanted[start : start + _BATCH]
                    for row in await conn.execute(select(_P).where(_P.c.package_id.in_(chunk))):
                        native = _package(row)
                        packages[native.package_id] = native
        in_use = await store.package_ids_in_use(list(packages))
        entries = []
        for key, package_id in zip(keys, package_ids, strict=True):
            package = packages.get(package_id) if package_id is not None else None
            # Both None: deleted meanwhile (kept, so a short page still means the end).
            record = records.get(key.vnf_pkg_id)
            entries.append(
                VnfPackageEntry(
                    key.vnf_pkg_id,
                    key.created_at,
                    record,
                    package,
                    package is not None and package.package_id in in_use,
                )
            )
        return entries


__all__ = [
    "PAGE_COLUMNS",
    "VnfPackageEntry",
    "VnfPackageRecord",
    "VnfPackageRows",
    "VnfPackageStore",
]

"""What the ETSI SOL005 face (``vnfpkgm``) stores beside the native package rows (see
``VnfPackageRow``). ``SqlStore`` takes these methods from :class:`VnfPackageRows`;
:class:`VnfPackageStore` is what the rest of netweave may ask."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Row, Table, select

from netweave.errors import Conflict, NotFound
from netweave.store.tables import VnfPackageRow

if TYPE_CHECKING:
    from netweave.store.sql import SqlStore

_VP = cast(Table, VnfPackageRow.__table__)


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

    async def list_vnf_packages(self) -> list[VnfPackageRecord]:
        """Every row (the face merges them with the native packages)."""


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

    async def list_vnf_packages(self) -> list[VnfPackageRecord]:
        from netweave.store.sql import _translate

        query = select(_VP).order_by(_VP.c.created_at, _VP.c.vnf_pkg_id)
        with _translate("listing VNF packages"):
            async with _sql(self)._conn(write=False) as conn:
                return [_record(row) for row in await conn.execute(query)]


__all__ = ["VnfPackageRecord", "VnfPackageRows", "VnfPackageStore"]

"""The native deployment repository of ``SqlStore``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, select

from netweave.models import DeploymentStatus
from netweave.store.engine import SqlBase, _translate
from netweave.store.records import DeploymentRecord, Page
from netweave.store.rows import (
    _D,
    _IN_CHUNK,
    _changes,
    _enum,
    _now,
    _plain,
    _require_aware,
    _values,
)


def _deployment(row: Row[Any]) -> DeploymentRecord:
    data = dict(row._mapping)
    data["status"] = DeploymentStatus(data["status"])
    return DeploymentRecord(**data)


class DeploymentRows(SqlBase):
    """Native deployments (``deployments``)."""

    async def add_deployment(self, record: DeploymentRecord) -> None:
        _require_aware("created_at", record.created_at)
        _require_aware("updated_at", record.updated_at)
        await self._insert(f"deployment {record.deployment_id!r}", _D, _values(record))

    async def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        row = await self._get_by("reading a deployment", _D, "deployment_id", deployment_id)
        return None if row is None else _deployment(row)

    async def get_deployments(self, deployment_ids: Sequence[str]) -> dict[str, DeploymentRecord]:
        found: dict[str, DeploymentRecord] = {}
        ids = list(dict.fromkeys(deployment_ids))
        with _translate("reading deployments"):
            async with self._conn(write=False) as conn:
                for start in range(0, len(ids), _IN_CHUNK):
                    chunk = ids[start : start + _IN_CHUNK]
                    rows = await conn.execute(select(_D).where(_D.c.deployment_id.in_(chunk)))
                    for row in rows:
                        record = _deployment(row)
                        found[record.deployment_id] = record
        return found

    async def deployment_refs(
        self, *, after: str | None, limit: int
    ) -> list[tuple[str, str, str | None]]:
        statement = (
            select(_D.c.deployment_id, _D.c.adapter, _D.c.backend_ref)
            .order_by(_D.c.deployment_id)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(_D.c.deployment_id > after)
        rows = await self._read("listing deployment references", statement, {})
        return [cast("tuple[str, str, str | None]", tuple(row)) for row in rows]

    async def list_deployments(
        self,
        *,
        package_id: str | None = None,
        status: DeploymentStatus | None = None,
        namespace: str | None = None,
        adapter: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        return await self._page_where_equal(
            "listing deployments",
            _D,
            {
                "package_id": package_id,
                "status": _plain(status),
                "namespace": namespace,
                "adapter": adapter,
            },
            ("created_at", "deployment_id"),
            _deployment,
            limit,
            offset,
        )

    async def update_deployment(self, deployment_id: str, **changes: Any) -> DeploymentRecord:
        values = _changes(DeploymentRecord, _D, changes, key="deployment_id")
        if "status" in values:
            values["status"] = _enum(DeploymentStatus, "status", values["status"]).value
        values.setdefault("updated_at", _now())
        row = await self._update(
            f"deployment {deployment_id!r}", _D, ("deployment_id", deployment_id), values
        )
        return _deployment(row)

    async def delete_deployment(self, deployment_id: str) -> None:
        await self._delete(f"deployment {deployment_id!r}", _D, _D.c.deployment_id == deployment_id)

"""The ``Idempotency-Key`` repository of ``SqlStore``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete

from netweave.store.engine import SqlBase, _translate
from netweave.store.records import IdempotencyRecord
from netweave.store.rows import _I, _require_aware, _values


def _idempotency(row: Row[Any]) -> IdempotencyRecord:
    data = dict(row._mapping)
    data["body"] = bytes(data["body"])
    return IdempotencyRecord(**data)


class IdempotencyRows(SqlBase):
    """``Idempotency-Key`` answers (``idempotency_keys``)."""

    async def get_idempotency(self, key: str, scope: str) -> IdempotencyRecord | None:
        row = await self._get(
            "reading an idempotency key", _I, (_I.c["key"] == key) & (_I.c.scope == scope)
        )
        return None if row is None else _idempotency(row)

    async def put_idempotency(self, record: IdempotencyRecord) -> None:
        _require_aware("created_at", record.created_at)
        await self._insert("idempotency key", _I, _values(record))

    async def purge_idempotency(self, older_than: datetime) -> int:
        _require_aware("older_than", older_than)
        with _translate("purging idempotency keys"):
            async with self._conn(write=True) as conn:
                result = await conn.execute(delete(_I).where(_I.c.created_at < older_than))
        return int(result.rowcount)

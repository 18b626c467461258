"""The API token repository of ``SqlStore``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, insert, select

from netweave.store.engine import SqlBase, _translate
from netweave.store.records import ApiTokenRecord
from netweave.store.rows import _T, _check_lengths, _require_aware, _values


def _api_token(row: Row[Any]) -> ApiTokenRecord:
    return ApiTokenRecord(**row._mapping)


class ApiTokenRows(SqlBase):
    """Hashed API tokens (``api_tokens``)."""

    async def add_api_token(self, record: ApiTokenRecord) -> None:
        _require_aware("created_at", record.created_at)
        values = _values(record)
        values["scopes"] = list(record.scopes)
        _check_lengths(_T, values)
        # The hash is a secret's fingerprint: name the token, not the hash, in conflicts.
        with _translate(
            f"API token {record.token_id!r}",
            table=_T,
            values={"token_id": record.token_id, "token_hash": "<hash>"},
        ):
            async with self._conn(write=True, savepoint=True) as conn:
                await conn.execute(insert(_T).values(**values))

    async def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        row = await self._get_by("reading an API token", _T, "token_hash", token_hash)
        return None if row is None else _api_token(row)

    async def count_api_tokens(self) -> int:
        with _translate("counting API tokens"):
            async with self._conn(write=False) as conn:
                return int((await conn.execute(select(func.count()).select_from(_T))).scalar_one())

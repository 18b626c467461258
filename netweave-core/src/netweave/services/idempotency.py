"""``Idempotency-Key`` on POST: the same key and body from the same principal on the same route
returns the first response again, without doing the work twice.

A key is scoped to ``principal + method + path``. The stored response is replayed verbatim
(status, body, ``Location``/``Link``/``Warning`` headers). The same key with a different body is
refused with 422 (``IdempotencyKeyReused``) — the client has a bug, repeating would be wrong.
Only successful (2xx) responses are stored: a failed request may be retried with the same key.
Two *concurrent* first uses of one key both run; the second one to store loses and logs it (the
work itself is guarded by the store's unique constraints and the one-operation-per-deployment
rule).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from netweave.errors import AlreadyExists, InvalidInput, NetweaveError
from netweave.store import IdempotencyRecord, Store

_log = logging.getLogger("netweave.idempotency")

MAX_KEY_LENGTH = 255
#: What a key may hold (the OpenAPI document declares the same): printable ASCII, as an HTTP
#: header carries it without ambiguity.
KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
REPLAYED_HEADERS = ("location", "link", "warning", "content-type")


class IdempotencyKeyReused(NetweaveError):
    status = 422
    code = "IdempotencyKeyReused"
    title = "Idempotency key reused with a different request"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: bytes
    headers: dict[str, str]


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyService:
    def __init__(self, store: Store, *, retention: timedelta = timedelta(hours=24)) -> None:
        self._store = store
        self._retention = retention

    @staticmethod
    def validate_key(key: str) -> str:
        if not _KEY.fullmatch(key):
            raise InvalidInput(
                f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable ASCII characters",
                details={"header": "Idempotency-Key"},
            )
        return key

    async def lookup(self, key: str, scope: str, body_hash: str) -> StoredResponse | None:
        record = await self._store.get_idempotency(key, scope)
        if record is None:
            return None
        if datetime.now(UTC) - record.created_at > self._retention:
            return None
        if record.request_hash != body_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request body",
                details={"header": "Idempotency-Key"},
            )
        return StoredResponse(record.status_code, record.body, dict(record.headers))

    async def remember(
        self, key: str, scope: str, body_hash: str, response: StoredResponse
    ) -> None:
        if not 200 <= response.status_code < 300:
            return
        record = IdempotencyRecord(
            key=key,
            scope=scope,
            request_hash=body_hash,
            status_code=response.status_code,
            body=response.body,
            headers={k: v for k, v in response.headers.items() if k.lower() in REPLAYED_HEADERS},
            created_at=datetime.now(UTC),
        )
        try:
            await self._store.put_idempotency(record)
        except AlreadyExists:
            _log.info("idempotency key stored concurrently by another request; keeping the first")

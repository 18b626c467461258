"""SQLite called on the event loop's own thread, shaped like aiosqlite for SQLAlchemy.

Why not aiosqlite: it runs every driver call (cursor, execute, fetch, close, begin, commit) on a
thread of its own and hands each result back through the event loop, some ten thread round
trips per transaction, each waiting for the interpreter lock. Under load (200 concurrent
deployment creates, about ten small transactions each, beside sixteen Helm threads) those
hand-overs, not SQLite, were most of the gateway's cost. The gateway's statements are small
and SQLite answers them from local disk in microseconds (WAL with ``synchronous=NORMAL``: a
commit appends to the WAL without an fsync), so calling it inline is cheaper than handing
over.

What could stall the loop, and how it is bounded:

- Another process's write lock: the connection waits at most ``BLOCKING_BUSY_MS`` inside
  SQLite; the store retries ``BEGIN IMMEDIATE`` after that by awaiting (see ``begin``), so
  waiting for another process does not block the loop. In this process writers queue on the
  store's own asyncio lock and never meet the busy handler.
- Readers never wait for writers in WAL mode.
- Reads are pages bounded by the store's page limit.

SQLAlchemy's aiosqlite dialect drives these classes unchanged (through ``async_creator``): its
adapter awaits the same coroutine methods aiosqlite offers, which here complete at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from time import monotonic
from typing import Any, Final

#: The longest SQLite itself may block the loop waiting for another process's lock.
BLOCKING_BUSY_MS: Final = 20
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class InlineCursor:
    """An aiosqlite-shaped cursor whose coroutines run the sqlite3 call directly."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """An aiosqlite-shaped connection over one sqlite3 connection (see the module docstring)."""

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        # The name SQLAlchemy's aiosqlite adapter checks before commit and rollback: set while
        # the connection is open.
        self._connection: sqlite3.Connection | None = connection

    @property
    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._open.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._open.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return InlineCursor(self._open.execute(sql, parameters))

    async def begin(self, statement: str, *, give_up_after: float) -> None:
        """Run ``statement`` (a BEGIN), retrying by awaiting while another process holds the lock.

        Each attempt blocks at most ``BLOCKING_BUSY_MS``; between attempts the loop runs on.
        """
        deadline = monotonic() + give_up_after
        delay = 0.001
        while True:
            try:
                self._open.execute(statement)
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode not in _BUSY_CODES or monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def commit(self) -> None:
        self._open.commit()

    async def rollback(self) -> None:
        self._open.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate, also from garbage collection)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def connector(database: str, *, uri: bool) -> Callable[[], Awaitable[InlineConnection]]:
    """An ``async_creator`` for ``create_async_engine`` opening ``database`` inline."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(
            database,
            uri=uri,
            timeout=BLOCKING_BUSY_MS / 1000,
            # SQLAlchemy, not the driver, decides when transactions begin.
            isolation_level=None,
            # Opened and used on the loop's thread; only a garbage-collected pool entry may be
            # closed from elsewhere, which sqlite3 allows with this flag.
            check_same_thread=False,
        )
        return InlineConnection(connection)

    return connect

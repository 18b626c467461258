"""SQLite called on the event loop's own thread, through SQLAlchemy's synchronous engine.

Why inline: the gateway's statements are small and SQLite answers them from local disk in
microseconds (WAL with ``synchronous=NORMAL``: a commit appends to the WAL without an fsync).
aiosqlite ran every driver call (cursor, execute, fetch, close, begin, commit) on a thread of
its own, some ten thread round trips per transaction, each waiting for the interpreter lock;
SQLAlchemy's async layer then ran each statement in a greenlet of its own and awaited the
driver through an adapter. Under load (200 concurrent deployment creates beside sixteen Helm
threads) those layers, not SQLite, were most of the gateway's cost: a statement took about
three times as long through them as through the synchronous engine.

So the store drives SQLAlchemy's synchronous engine (the standard ``sqlite3`` driver) from the
loop, through :class:`LoopEngine` and :class:`LoopConnection`, which offer the awaited
methods of ``AsyncEngine`` and ``AsyncConnection`` the store uses, completing at once.

What could stall the loop, and how it is bounded:

- Another process's write lock: the connection waits at most ``BLOCKING_BUSY_MS`` inside
  SQLite; ``LoopConnection.begin`` retries ``BEGIN IMMEDIATE`` after that by awaiting, so
  waiting for another process does not block the loop. In this process writers queue on the
  store's own asyncio lock and never meet the busy handler.
- Readers never wait for writers in WAL mode.
- Reads are pages bounded by the store's page limit.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from time import monotonic
from typing import Any, Final, TypeVar

from sqlalchemy import Engine, Executable, event, exc
from sqlalchemy.engine import Connection, CursorResult

#: The longest SQLite itself may block the loop waiting for another process's lock.
BLOCKING_BUSY_MS: Final = 20
#: How long a writer waits (awaiting, not blocking) for another process's write lock.
BUSY_TIMEOUT_MS = 15_000
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: ``Connection.info`` key: the BEGIN statement the next transaction starts with.
BEGIN_KEY: Final = "netweave_begin"

_T = TypeVar("_T")


def connector(database: str, *, uri: bool) -> Callable[[], sqlite3.Connection]:
    """A ``creator`` for ``create_engine`` opening ``database`` for use on the loop."""

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            database,
            uri=uri,
            timeout=BLOCKING_BUSY_MS / 1000,
            # SQLAlchemy and LoopConnection.begin, not the driver, decide when transactions
            # begin.
            isolation_level=None,
            # Opened and used on the loop's thread; only a garbage-collected pool entry may be
            # closed from elsewhere, which sqlite3 allows with this flag.
            check_same_thread=False,
        )

    return connect


def configure(engine: Engine) -> None:
    """Pragmas for every new connection.

    No connection-level event listener: one would send every statement through SQLAlchemy's
    event dispatch (about a fifth of a short read's cost). Transactions begin in
    ``LoopConnection.begin``; a statement run outside one (tools, tests) runs in SQLite's
    autocommit mode.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # With WAL, NORMAL is durable across application crashes and much faster.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


async def _begin(connection: sqlite3.Connection, statement: str) -> None:
    """Run ``statement`` (a BEGIN), retrying by awaiting while another process holds the lock.

    Each attempt blocks at most ``BLOCKING_BUSY_MS``; between attempts the loop runs on.
    """
    deadline = monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            connection.execute(statement)
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode not in _BUSY_CODES or monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class LoopConnection:
    """A synchronous SQLAlchemy connection with ``AsyncConnection``'s awaited methods."""

    __slots__ = ("sync_connection",)

    def __init__(self, sync_connection: Connection) -> None:
        self.sync_connection = sync_connection

    @property
    def info(self) -> dict[str, Any]:
        return self.sync_connection.info

    async def execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    async def exec_driver_sql(self, statement: str) -> CursorResult[Any]:
        return self.sync_connection.exec_driver_sql(statement)

    async def run_sync(self, fn: Callable[..., _T], *args: Any) -> _T:
        return fn(self.sync_connection, *args)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[LoopConnection]:
        """A transaction, committed when the block ends (rolled back if it raises); its BEGIN
        (``info[BEGIN_KEY]``, else ``BEGIN``) waits for another process's lock by awaiting."""
        info = self.sync_connection.info
        statement = info.pop(BEGIN_KEY, "BEGIN")
        driver = self.sync_connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        try:
            await _begin(driver, statement)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(
                statement, None, error, sqlite3.Error, connection_invalidated=False
            ) from error
        try:
            # SQLAlchemy's own begin sends nothing to sqlite3 (the dialect's do_begin is empty).
            transaction = self.sync_connection.begin()
        except BaseException:
            driver.rollback()
            raise
        with transaction:
            yield self

    async def close(self) -> None:
        self.sync_connection.close()


class LoopEngine:
    """A synchronous SQLAlchemy engine with the parts of ``AsyncEngine`` the store uses."""

    def __init__(self, sync_engine: Engine) -> None:
        self.sync_engine = sync_engine
        self.dialect = sync_engine.dialect
        self.url = sync_engine.url

    def connect(self) -> _Connecting:
        """``await engine.connect()`` or ``async with engine.connect() as conn``."""
        return _Connecting(self)

    def _connect(self) -> LoopConnection:
        return LoopConnection(self.sync_engine.connect())

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[LoopConnection]:
        async with self.connect() as conn, conn.begin():
            yield conn

    async def dispose(self) -> None:
        self.sync_engine.dispose()


class _Connecting:
    """What ``LoopEngine.connect`` returns: awaitable, and an async context manager."""

    __slots__ = ("_conn", "_engine")

    def __init__(self, engine: LoopEngine) -> None:
        self._engine = engine
        self._conn: LoopConnection | None = None

    def __await__(self) -> Generator[Any, None, LoopConnection]:
        # Nothing to wait for: a generator that returns at once (no coroutine to build).
        return self._engine._connect()
        yield  # makes this a generator function

    async def __aenter__(self) -> LoopConnection:
        self._conn = self._engine._connect()
        return self._conn

    async def __aexit__(self, *_exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()

"""The SQL engine under ``SqlStore``: creating it (SQLite inline or PostgreSQL async),
transactions, the SQLite write lock, driver errors translated to netweave's, and
:class:`SqlBase`, the plumbing every repository shares.

Transactions: each call is its own transaction unless made inside ``store.transaction()``; the
open connection travels in a per-store context variable, so calls in the block share it. Tasks
spawned inside a block run their own transactions (on SQLite, a write from such a task waits
until the block ends: do not await it inside the block).

SQLite allows one writer at a time. Writers in this process queue on one lock (operation work,
marked with :func:`urgent_writes`, before requests: see :class:`_WriteLock`) and
start with ``BEGIN IMMEDIATE`` (so a transaction never has to upgrade a read lock, which fails
at once instead of waiting); a writer finding another process's lock retries its BEGIN by
awaiting, for up to ``sqlite_inline.BUSY_TIMEOUT_MS``. Readers never block thanks to WAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    Index,
    PrimaryKeyConstraint,
    Row,
    Table,
    UniqueConstraint,
    delete,
    exc,
    func,
    select,
)
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, Connection, create_engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.sql import Select

from netweave.errors import AlreadyExists, BackendUnavailable, InvalidInput, NetweaveError, NotFound
from netweave.store import sqlite_inline
from netweave.store.interface import URGENT_WRITES
from netweave.store.records import PackageRecord, Page
from netweave.store.rows import (
    _check_lengths,
    _insert_into,
    _page_bounds,
    _page_statements,
    _paged,
    _select_by,
    _update_by,
)
from netweave.store.sqlite_inline import LoopConnection, LoopEngine

#: Connect and ping bounds, so a dead database makes /readyz fail fast instead of hanging.
CONNECT_TIMEOUT_S: Final = 10.0


PING_TIMEOUT_S: Final = 5.0


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class _WriteLock:
    """An asyncio lock whose waiters marked urgent are served first (FIFO within each class),
    except that every ``URGENT_RUN``-th hand-over goes to a waiting request, so accepting new
    work slows under load but never stops.
    """

    URGENT_RUN: Final = 2

    def __init__(self) -> None:
        self._locked = False
        self._urgent_run = 0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if not self._locked and not self._urgent and not self._normal:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if URGENT_WRITES.get() else self._normal
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the lock as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    async def __aexit__(self, *_exc: object) -> None:
        self._release()

    def _release(self) -> None:
        # Hand the lock straight to the next waiter (it stays locked), so nobody barges in.
        order = (self._urgent, self._normal)
        if self._urgent_run >= self.URGENT_RUN:
            order = (self._normal, self._urgent)
        for queue in order:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    self._urgent_run = self._urgent_run + 1 if queue is self._urgent else 0
                    waiter.set_result(None)
                    return
        self._locked = False
        self._urgent_run = 0


@dataclass(slots=True)
class _Open:
    """A ``transaction()`` block's connection and the task that opened it."""

    conn: AsyncConnection | LoopConnection
    task: asyncio.Task[Any] | None
    open: bool = True
    #: Called once the transaction has ended (committed or rolled back).
    when_ended: list[Callable[[], None]] = field(default_factory=list)


class _Writes:
    """Counts a table's writes as they start and as they finish (committed or not), so a copy
    read while none was under way stays current as long as both counts stay unchanged. Inside
    an enclosing transaction a write finishes only when that transaction ends."""

    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0

    def counts(self) -> tuple[int, int]:
        return self.started, self.finished

    @contextlib.contextmanager
    def tracking(self, enclosing: _Open | None) -> Iterator[None]:
        self.started += 1
        try:
            yield
        finally:
            if enclosing is None:
                self.finish()
            else:
                enclosing.when_ended.append(self.finish)

    def finish(self) -> None:
        self.finished += 1


def _conflicting_key(table: Table, values: Mapping[str, Any], error: exc.IntegrityError) -> str:
    """Which unique key of ``table`` the violation is about, as ``col=value`` pairs."""
    message = str(error.orig)
    sqlite_cols = ""
    marker = "UNIQUE constraint failed: "
    if marker in message:
        sqlite_cols = message.split(marker, 1)[1].splitlines()[0].strip()
    keys: list[PrimaryKeyConstraint | UniqueConstraint | Index] = [
        c for c in table.constraints if isinstance(c, PrimaryKeyConstraint | UniqueConstraint)
    ]
    keys.extend(index for index in table.indexes if index.unique)
    for key in keys:
        cols = [c.name for c in key.columns]
        signature = ", ".join(f"{table.name}.{c}" for c in cols)
        if f'"{key.name}"' in message or sqlite_cols == signature:
            return ", ".join(f"{c}={values.get(c)!r}" for c in cols)
    return "a unique key"


def _sqlstate(error: exc.DBAPIError) -> str:
    """PostgreSQL's SQLSTATE (asyncpg's exception hangs under SQLAlchemy's adapter); "" else."""
    code = getattr(error.orig, "sqlstate", None) or getattr(
        getattr(error.orig, "__cause__", None), "sqlstate", None
    )
    return code if isinstance(code, str) else ""


def _is_unique_violation(error: exc.IntegrityError) -> bool:
    return _sqlstate(error) == "23505" or "UNIQUE constraint failed" in str(error.orig)


#: SQLSTATE classes meaning "the database cannot serve us now": connection exception, invalid
#: authorization, unknown database, too many connections, shutdown, serialization/deadlock.
_UNAVAILABLE_SQLSTATES = ("08", "28", "3D", "53", "57P", "40001", "40P01")


@contextmanager
def _translate(
    what: str, *, table: Table | None = None, values: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Turn driver and SQLAlchemy errors into the netweave taxonomy (none escape the store)."""
    try:
        yield
    except NetweaveError:
        raise
    except exc.IntegrityError as error:
        if _is_unique_violation(error):
            key = _conflicting_key(table, values or {}, error) if table is not None else "key"
            raise AlreadyExists(f"{what}: {key} already exists", details={"key": key}) from error
        raise InvalidInput(f"{what}: {error.orig}") from error
    except exc.DataError as error:
        raise InvalidInput(f"{what}: {error.orig}") from error
    except (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError) as error:
        raise BackendUnavailable(
            f"database unavailable during {what}: {getattr(error, 'orig', error)}"
        ) from error
    except exc.TimeoutError as error:  # pool exhausted
        raise BackendUnavailable(f"database busy during {what}: {error}") from error
    except exc.DBAPIError as error:
        if (
            error.connection_invalidated
            or error.statement is None  # raised while connecting
            or _sqlstate(error).startswith(_UNAVAILABLE_SQLSTATES)
        ):
            raise BackendUnavailable(f"database unavailable during {what}: {error.orig}") from error
        raise NetweaveError(f"database error during {what}: {error.orig}") from error
    except exc.StatementError as error:
        # Raised before reaching the database: a value the column type refused.
        raise InvalidInput(f"{what}: {error.orig}") from error
    except exc.SQLAlchemyError as error:
        raise NetweaveError(f"database error during {what}: {error}") from error
    except (OSError, TimeoutError) as error:
        raise BackendUnavailable(f"database unreachable during {what}: {error}") from error


@functools.lru_cache(maxsize=256)
def _sqlite_sql(statement: Select[Any]) -> tuple[str, tuple[str, ...]]:
    """``statement`` compiled for SQLite once: its text and its parameters' names in order."""
    compiled = statement.compile(dialect=SQLiteDialect_pysqlite())
    return str(compiled), tuple(compiled.positiontup or ())


def _engine_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise InvalidInput(f"invalid database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
        if (
            parsed.database
            and parsed.database != ":memory:"
            and not parsed.database.startswith("file:")
        ):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return parsed
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg")
    raise InvalidInput(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path or "
        "postgresql://user@host/db"
    )


def _sqlite_engine(engine_url: URL, *, echo: bool) -> LoopEngine:
    """SQLAlchemy's synchronous engine on the standard driver, driven from the loop."""
    # The dialect's reading of the URL (file name, uri=true).
    args, options = SQLiteDialect_pysqlite().create_connect_args(engine_url)
    uri = bool(options.get("uri", False))
    memory = engine_url.database in {None, "", ":memory:"} or "mode=memory" in str(engine_url)
    pool: dict[str, Any] = (
        # One shared connection: the only way several connections see one in-memory database.
        {"poolclass": StaticPool}
        if memory
        # Used from the loop's thread only, so a wait for a free connection could never end:
        # an exhausted pool fails at once (503) instead of blocking the loop (pool_timeout=0).
        # Readers hold a connection without awaiting anything else and writers queue before
        # taking one, so a few are in use at a time.
        else {"poolclass": QueuePool, "pool_size": 10, "max_overflow": 20, "pool_timeout": 0}
    )
    engine = create_engine(
        engine_url,
        echo=echo,
        creator=sqlite_inline.connector(str(args[0]), uri=uri),
        **pool,
    )
    sqlite_inline.configure(engine)
    return LoopEngine(engine)


class SqlBase:
    """The connection, transaction and row plumbing every repository shares."""

    def __init__(self, engine: AsyncEngine | LoopEngine) -> None:
        self._engine = engine
        self.dialect: Final[str] = engine.dialect.name
        self._sqlite = self.dialect == "sqlite"
        # PostgreSQL reads run in autocommit: READ COMMITTED gives each statement its own
        # snapshot anyway, and it saves the BEGIN and COMMIT round trips of every read.
        self._read_engine = (
            engine
            if isinstance(engine, LoopEngine)
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._write_lock: _WriteLock | None = _WriteLock() if self._sqlite else None
        # An in-memory SQLite database is one shared connection (StaticPool): readers must
        # queue as well, or their transactions would interleave on it.
        database = engine.url.database or ""
        self._lock_reads = self._sqlite and (
            database in {"", ":memory:"} or "mode=memory" in str(engine.url)
        )
        self._current: ContextVar[_Open | None] = ContextVar(
            f"netweave_store_{id(self)}", default=None
        )
        self._subscription_writes = _Writes()
        self._package_writes = _Writes()
        # Packages read by id, on a store only this process writes (see ``sole_writer``): every
        # deployment create and update reads its package twice (request, then runner), and
        # packages rarely change. Entries carry the write counts they were read under.
        self._packages: dict[str, tuple[tuple[int, int], PackageRecord]] = {}
        #: SQLite: the connection single-statement reads run on (see ``_read``).
        self._reader: Connection | None = None

    @property
    def engine(self) -> AsyncEngine | LoopEngine:
        return self._engine

    @asynccontextmanager
    async def _own(self, *, write: bool) -> AsyncIterator[AsyncConnection | LoopConnection]:
        """A fresh connection in its own transaction, committed when the block ends."""
        lock: AbstractAsyncContextManager[Any] = (
            self._write_lock
            if self._write_lock is not None and (write or self._lock_reads)
            else nullcontext()
        )
        await lock.__aenter__()
        try:
            conn = await (self._engine if write else self._read_engine).connect()
        except BaseException:
            await lock.__aexit__(None, None, None)
            raise
        try:
            try:
                if self._sqlite:
                    conn.info[sqlite_inline.BEGIN_KEY] = "BEGIN IMMEDIATE" if write else "BEGIN"
                async with conn.begin():
                    yield conn
            finally:
                # The transaction has ended: the next writer need not wait for the pool's
                # reset of this connection (one more round trip to the driver's thread).
                await lock.__aexit__(None, None, None)
        finally:
            await conn.close()

    @asynccontextmanager
    async def _conn(
        self, *, write: bool, savepoint: bool = False
    ) -> AsyncIterator[AsyncConnection | LoopConnection]:
        """The connection of the enclosing ``transaction()``, or a transaction of our own.

        ``savepoint``: inside an enclosing transaction, run in a SAVEPOINT so a failing
        statement (e.g. a unique violation the caller handles) leaves the transaction usable.
        """
        current = self._joinable()
        if current is None:
            async with self._own(write=write) as conn:
                yield conn
        elif savepoint and isinstance(current, AsyncConnection):
            # SQLite needs none: a failing statement is undone alone and the transaction stays
            # usable (its default ABORT conflict resolution). That saves two statements per
            # write under SQLite's one-writer lock.
            async with current.begin_nested():
                yield current
        else:
            yield current

    def _joinable(self) -> AsyncConnection | LoopConnection | None:
        """The open transaction this task may use: its own, still open.

        Tasks spawned inside a block inherit the context variable; they must not share the
        connection (one connection cannot run two statements at once) nor use it after the
        block closed, so they get transactions of their own.
        """
        current = self._current.get()
        if current is None or not current.open or current.task is not asyncio.current_task():
            return None
        return current.conn

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        if self._joinable() is not None:
            # Nested blocks join the outer transaction.
            yield
            return
        opened: _Open | None = None
        try:
            with _translate("transaction"):
                async with self._own(write=True) as conn:
                    opened = _Open(conn, asyncio.current_task())
                    token = self._current.set(opened)
                    try:
                        yield
                    finally:
                        opened.open = False
                        self._current.reset(token)
        finally:
            for ended in opened.when_ended if opened is not None else ():
                ended()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._transaction()

    async def _page(
        self,
        what: str,
        table: Table,
        conditions: Sequence[ColumnElement[bool]],
        order: Sequence[ColumnElement[Any]],
        convert: Any,
        limit: int,
        offset: int,
    ) -> Page:
        """A page of ``table``'s rows meeting ``conditions`` (statements built per call)."""
        count = select(func.count()).select_from(table).where(*conditions)
        items = _paged(select(table).where(*conditions).order_by(*order))
        return await self._run_page(what, (count, items), {}, convert, limit, offset)

    async def _page_where_equal(
        self,
        what: str,
        table: Table,
        equal: Mapping[str, Any],
        order: tuple[str, ...],
        convert: Any,
        limit: int,
        offset: int,
    ) -> Page:
        """A page of ``table``'s rows whose columns equal ``equal``'s values (``None``: any),
        by statements built once per set of columns."""
        given = {name: value for name, value in equal.items() if value is not None}
        statements = _page_statements(table, tuple(given), order)
        params = {f"eq_{name}": value for name, value in given.items()}
        return await self._run_page(what, statements, params, convert, limit, offset)

    async def _run_page(
        self,
        what: str,
        statements: tuple[Select[Any], Select[Any]],
        params: dict[str, Any],
        convert: Any,
        limit: int,
        offset: int,
    ) -> Page:
        """The total (``statements[0]``) and the page of ``statements[1]``'s rows (its bound
        ``page_limit`` and ``page_offset``)."""
        limit, offset = _page_bounds(limit, offset)
        count, rows = statements
        with _translate(what):
            async with self._conn(write=False) as conn:
                total = (await conn.execute(count, params)).scalar_one()
                items: list[Any] = []
                if limit and offset < total:
                    page = {**params, "page_limit": limit, "page_offset": offset}
                    items = [convert(row) for row in await conn.execute(rows, page)]
        return Page(items=items, total=int(total))

    async def _get(self, what: str, table: Table, key: ColumnElement[bool]) -> Row[Any] | None:
        with _translate(what):
            async with self._conn(write=False) as conn:
                return (await conn.execute(select(table).where(key))).first()

    async def _get_by(self, what: str, table: Table, column: str, value: Any) -> Row[Any] | None:
        """The row whose ``column`` (a unique key) is ``value``, by a statement built once; on
        a SQLite file outside a transaction, on the reader kept for such reads (``_read``):
        no BEGIN and COMMIT around one point read."""
        rows = await self._read(what, _select_by(table, column), {"key": value})
        return rows[0] if rows else None

    async def _insert(self, what: str, table: Table, values: dict[str, Any]) -> None:
        _check_lengths(table, values)
        with _translate(what, table=table, values=values):
            async with self._conn(write=True, savepoint=True) as conn:
                await conn.execute(_insert_into(table), values)

    async def _update(
        self,
        what: str,
        table: Table,
        key: tuple[str, Any],
        changes: dict[str, Any],
    ) -> Row[Any]:
        """Set ``changes`` (plain values) on the row whose ``key[0]`` column is ``key[1]``."""
        _check_lengths(table, changes)
        column, value = key
        stmt = _update_by(table, column, tuple(changes))
        params = {f"new_{name}": change for name, change in changes.items()}
        params["key"] = value
        with _translate(what, table=table, values=changes):
            async with self._conn(write=True, savepoint=True) as conn:
                row = (await conn.execute(stmt, params)).first()
        if row is None:
            raise NotFound(f"{what}: not found")
        return cast("Row[Any]", row)

    async def _delete(self, what: str, table: Table, key: ColumnElement[bool]) -> None:
        with _translate(what):
            async with self._conn(write=True) as conn:
                result = await conn.execute(delete(table).where(key))
        if result.rowcount == 0:
            raise NotFound(f"{what}: not found")

    async def _read(
        self, what: str, statement: Select[Any], params: Mapping[str, Any]
    ) -> Sequence[Row[Any]]:
        """Every row of one read statement. On a SQLite file, outside a ``transaction()``
        block, it runs on a connection kept for such reads in SQLite's autocommit mode: no pool
        checkout, BEGIN or COMMIT around one statement (most of a point read's cost). The rows
        are fetched before the loop runs anything else, so that connection is never shared."""
        with _translate(what):
            reader = self._inline_reader()
            if reader is None:
                async with self._conn(write=False) as conn:
                    return (await conn.execute(statement, params)).all()
            try:
                return reader.execute(statement, params).all()
            except BaseException:
                self._close_reader()  # a fresh one next time, whatever state this one is in
                raise

    def _inline_reader(self) -> Connection | None:
        engine = self._engine
        if not isinstance(engine, LoopEngine) or self._lock_reads or self._joinable() is not None:
            return None
        if self._reader is None:
            self._reader = engine.sync_engine.connect()
        return self._reader

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close()

    def _driver_rows(
        self, what: str, statement: Select[Any], params: Mapping[str, Any]
    ) -> list[Any] | None:
        """``statement``'s raw rows read on the SQLite reader's driver connection (see
        ``_read``), or None where there is no such reader (PostgreSQL, inside a transaction)."""
        reader = self._inline_reader()
        if reader is None:
            return None
        sql, order = _sqlite_sql(statement)
        driver = reader.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        with _translate(what):
            try:
                return driver.execute(sql, [params[name] for name in order]).fetchall()
            except sqlite3.Error as error:
                self._close_reader()
                raise exc.DBAPIError.instance(
                    sql, None, error, sqlite3.Error, connection_invalidated=False
                ) from error

    @property
    def sole_writer(self) -> bool:
        return self._sqlite  # SQLite serves one process (docs/replicas.md)

    def _tracking(self, writes: _Writes) -> contextlib.AbstractContextManager[None]:
        return writes.tracking(self._current.get() if self._joinable() is not None else None)

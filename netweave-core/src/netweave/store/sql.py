"""``SqlStore``: the :class:`~netweave.store.interface.Store` on SQLAlchemy 2.

SQLite for one process (SQLAlchemy's synchronous engine called inline on the event loop: see
``sqlite_inline``), PostgreSQL (SQLAlchemy async, asyncpg) for several replicas. Queries use
Core on the declarative tables (no ORM identity map: rows become plain record dataclasses).

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
import copy
import enum
import functools
import json
import re
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import msgspec
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    case,
    delete,
    exc,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, Connection, create_engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert, ReturningUpdate

from netweave.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import (
    DeploymentStatus,
    OperationState,
    OperationType,
    PackageState,
)
from netweave.models.operations import CLAIMABLE_STATES, TERMINAL_STATES
from netweave.store import sqlite_inline
from netweave.store.interface import MAX_PAGE_LIMIT, URGENT_WRITES, urgent_writes
from netweave.store.records import (
    ApiTokenRecord,
    DeploymentRecord,
    IdempotencyRecord,
    OperationRecord,
    PackageRecord,
    Page,
    SubscriptionRecord,
)
from netweave.store.sqlite_inline import LoopConnection, LoopEngine
from netweave.store.tables import (
    ApiTokenRow,
    DeploymentRow,
    IdempotencyRow,
    OperationRow,
    PackageRow,
    ReconcileShardRow,
    SubscriptionRow,
    UTCDateTime,
    metadata,
)
from netweave.store.vnf import VnfRows
from netweave.store.vnfpkg import VnfPackageRows

if TYPE_CHECKING:
    from netweave.store.outbox import OutboxStore

#: The newest revision in ``migrations/versions``; a test checks it against Alembic's view.
HEAD_REVISION: Final = "0007"
#: Offsets beyond this cannot be a real position and would overflow a 64-bit integer.
MAX_OFFSET: Final = 2**62
#: Connect and ping bounds, so a dead database makes /readyz fail fast instead of hanging.
CONNECT_TIMEOUT_S: Final = 10.0
PING_TIMEOUT_S: Final = 5.0

#: Alembic's script directory, shipped inside the package (there is no alembic.ini).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Packages kept by ``get_package`` on a store only this process writes.
_MAX_CACHED_PACKAGES: Final = 1024
# Bound for "IN (...)" lists: both drivers cap bound parameters per statement.
_IN_CHUNK = 1000

_P = cast(Table, PackageRow.__table__)
_D = cast(Table, DeploymentRow.__table__)
_O = cast(Table, OperationRow.__table__)
_R = cast(Table, ReconcileShardRow.__table__)
_S = cast(Table, SubscriptionRow.__table__)
_I = cast(Table, IdempotencyRow.__table__)
_T = cast(Table, ApiTokenRow.__table__)

_E = TypeVar("_E", bound=enum.Enum)

_CLAIMABLE_OPERATION_STATES = tuple(sorted(s.value for s in CLAIMABLE_STATES))
_TERMINAL_OPERATION_STATES = tuple(sorted(s.value for s in TERMINAL_STATES))
_STORED_PACKAGE_STATES = frozenset(
    {PackageState.UPLOADED, PackageState.AVAILABLE, PackageState.DEPRECATED}
)


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


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(value: Any) -> Any:
    """Enums as their string values (columns are plain strings)."""
    return value.value if isinstance(value, enum.Enum) else value


def _values(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in fields(record)}


def _require_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime", details={"field": name})


def _page_bounds(limit: int, offset: int) -> tuple[int, int]:
    for name, value, upper in (("limit", limit, MAX_PAGE_LIMIT), ("offset", offset, MAX_OFFSET)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be an integer", details={"field": name})
        if value < 0 or value > upper:
            raise InvalidInput(
                f"{name} must be between 0 and {upper}, got {value}",
                details={"field": name, "value": value},
            )
    return limit, offset


# -- rows to records ------------------------------------------------------------------------


def _package(row: Row[Any]) -> PackageRecord:
    data = dict(row._mapping)
    data["state"] = PackageState(data["state"])
    return PackageRecord(**data)


def _copy_package(record: PackageRecord) -> PackageRecord:
    """A copy a caller may change without changing the cached one (records are mutable)."""
    return replace(record, extensions=copy.deepcopy(record.extensions))


def _deployment(row: Row[Any]) -> DeploymentRecord:
    data = dict(row._mapping)
    data["status"] = DeploymentStatus(data["status"])
    return DeploymentRecord(**data)


def _operation(row: Row[Any]) -> OperationRecord:
    data = dict(row._mapping)
    data["state"] = OperationState(data["state"])
    data["operation_type"] = OperationType(data["operation_type"])
    return OperationRecord(**data)


def _subscription(row: Row[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(**row._mapping)


def _idempotency(row: Row[Any]) -> IdempotencyRecord:
    data = dict(row._mapping)
    data["body"] = bytes(data["body"])
    return IdempotencyRecord(**data)


def _api_token(row: Row[Any]) -> ApiTokenRecord:
    return ApiTokenRecord(**row._mapping)


# -- statements built once ------------------------------------------------------------------
# Building a statement costs more than SQLAlchemy's compiled-cache lookup it leads to; the hot
# single-row statements are built once per shape, with their values as bound parameters.


@functools.cache
def _insert_into(table: Table) -> Insert:
    return insert(table)


@functools.cache
def _select_by(table: Table, column: str) -> Select[Any]:
    return select(table).where(table.c[column] == bindparam("key"))


@functools.lru_cache(maxsize=256)  # keyed by column sets: bounded all the same
def _update_by(table: Table, column: str, names: tuple[str, ...]) -> ReturningUpdate[Any]:
    # Bound parameters may not share a name with a column the statement sets.
    return (
        update(table)
        .where(table.c[column] == bindparam("key"))
        .values({name: bindparam(f"new_{name}") for name in names})
        .returning(*table.c)
    )


@functools.lru_cache(maxsize=256)
def _update_operation(
    names: tuple[str, ...], *, clock: bool, expected: bool
) -> ReturningUpdate[Any] | Select[Any]:
    """``update_operation``'s statement: set ``names``; with ``clock``, restart
    ``state_entered_time`` when the state really changes; with ``expected``, only from that
    state. Nothing to set: a plain read under the same condition."""
    where = _O.c.operation_id == bindparam("key")
    if expected:
        where = where & (_O.c.state == bindparam("expected"))
    if not names:
        return select(_O).where(where)
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
    if clock:
        values["state_entered_time"] = case(
            (_O.c.state != bindparam("to_state"), bindparam("entered_at", type_=UTCDateTime())),
            else_=_O.c.state_entered_time,
        )
    return update(_O).where(where).values(values).returning(*_O.c)


@functools.lru_cache(maxsize=256)  # keyed by column sets: bounded all the same
def _page_statements(
    table: Table, names: tuple[str, ...], order: tuple[str, ...]
) -> tuple[Select[Any], Select[Any]]:
    """A list's count and rows (in ``order``) where each of ``names`` equals its parameter
    ``eq_<name>``."""
    where = [table.c[name] == bindparam(f"eq_{name}") for name in names]
    return (
        select(func.count()).select_from(table).where(*where),
        _paged(select(table).where(*where).order_by(*(table.c[name] for name in order))),
    )


def _paged(rows: Select[Any]) -> Select[Any]:
    """``rows`` limited to the bound ``page_limit`` rows from ``page_offset`` on."""
    return rows.limit(bindparam("page_limit")).offset(bindparam("page_offset"))


#: What ``package_views``/``count_packages`` filter on by equality (keys of their ``equal``).
_PACKAGE_FILTERS: Final = ("name", "version", "package_type", "adapter")


def _package_in_use() -> ColumnElement[bool]:
    return exists().where(_D.c.package_id == _P.c.package_id)


@functools.lru_cache(maxsize=256)  # keyed by filter shapes: bounded all the same
def _package_view_statements(
    names: tuple[str, ...], state: str | None, keyset: bool
) -> tuple[Select[Any], Select[Any]]:
    """The count and the page of packages (each row with ``in_use``) where each of ``names``
    equals ``eq_<name>``; ``state`` ``"in_use"``/``"stored"`` adds the IN_USE rule (a stored
    state shows only while no deployment uses the package, ``eq_state``); ``keyset`` starts
    after (``after_name``, ``after_version``) in (name, version) order, on the unique index."""
    where: list[ColumnElement[bool]] = [_P.c[name] == bindparam(f"eq_{name}") for name in names]
    if state == "in_use":
        where.append(_package_in_use())
    elif state == "stored":
        where.extend((_P.c.state == bindparam("eq_state"), ~_package_in_use()))
    count = select(func.count()).select_from(_P).where(*where)
    if keyset:
        where.append(
            tuple_(_P.c.name, _P.c.version)
            > tuple_(
                bindparam("after_name", type_=String()), bindparam("after_version", type_=String())
            )
        )
    rows = _paged(
        select(_P, _package_in_use().label("in_use"))
        .where(*where)
        .order_by(_P.c.name, _P.c.version)
    )
    return count, rows


@functools.cache
def _package_refs_statement() -> Select[Any]:
    return select(_P.c.backend_ref).where(_P.c.adapter == bindparam("adapter"))


@functools.cache
def _package_view_statement() -> Select[Any]:
    """One package by id with whether a deployment uses it (one statement, not two)."""
    return select(_P, _package_in_use().label("in_use")).where(_P.c.package_id == bindparam("key"))


def _package_view(row: Row[Any]) -> tuple[PackageRecord, bool]:
    data = dict(row._mapping)
    in_use = bool(data.pop("in_use"))
    data["state"] = PackageState(data["state"])
    return PackageRecord(**data), in_use


def _sqlite_package_row() -> Callable[[Sequence[Any]], tuple[PackageRecord, bool]] | None:
    """A converter of a raw ``sqlite3`` row of ``select(_P, in_use)`` into a package view,
    doing what SQLAlchemy's result processing does for these column types (SQLite keeps
    ``DateTime`` as ISO text, naive UTC, and JSON as text); ``None`` if a column has a type it
    does not know, and the store then reads through SQLAlchemy (a test compares both).

    A list page converts 100 rows per request, so the per-row work is kept small: JSON decoded
    by msgspec (the standard library's parser as the fallback for what msgspec refuses, such
    as NaN), times parsed with their offset, the state looked up in a dict, the record built
    positionally."""
    names: list[str] = []
    times: list[int] = []
    documents: list[int] = []
    state = -1
    for index, column in enumerate(_P.c):
        kind = column.type
        if isinstance(kind, UTCDateTime):
            times.append(index)
        elif isinstance(kind, JSON):
            documents.append(index)
        elif column.name == "state":
            state = index
        elif not isinstance(kind, String):
            return None
        names.append(column.name)
    record_fields = [f.name for f in fields(PackageRecord)]
    if state < 0 or sorted(record_fields) != sorted(names):
        return None
    order = [names.index(name) for name in record_fields]
    states = {member.value: member for member in PackageState}
    fromisoformat = datetime.fromisoformat
    decode = msgspec.json.decode

    def instant(text: str) -> datetime:
        # Naive UTC text as SQLAlchemy writes it ("YYYY-MM-DD HH:MM:SS[.ffffff]"): parsed with
        # its offset appended, a sixth of the cost of parsing and then replace(tzinfo=UTC).
        if len(text) in (19, 26):
            return fromisoformat(text + "+00:00")
        return fromisoformat(text).replace(tzinfo=UTC)

    def document(text: str) -> Any:
        try:
            return decode(text)
        except (msgspec.DecodeError, ValueError):
            return json.loads(text)

    def convert(row: Sequence[Any]) -> tuple[PackageRecord, bool]:
        values = list(row)
        for index in times:
            value = values[index]
            if value is not None:
                values[index] = instant(value)
        for index in documents:
            value = values[index]
            if value is not None:
                values[index] = document(value)
        value = values[state]
        values[state] = states.get(value) or PackageState(value)
        return PackageRecord(*[values[index] for index in order]), bool(values[-1])

    return convert


_SQLITE_PACKAGE_ROW: Final = _sqlite_package_row()


@functools.lru_cache(maxsize=256)
def _sqlite_sql(statement: Select[Any]) -> tuple[str, tuple[str, ...]]:
    """``statement`` compiled for SQLite once: its text and its parameters' names in order."""
    compiled = statement.compile(dialect=SQLiteDialect_pysqlite())
    return str(compiled), tuple(compiled.positiontup or ())


def _view_params(
    equal: Mapping[str, Any], state: PackageState | None
) -> tuple[tuple[str, ...], str | None, dict[str, Any]]:
    given = {name: equal[name] for name in _PACKAGE_FILTERS if equal.get(name) is not None}
    params = {f"eq_{name}": value for name, value in given.items()}
    kind: str | None = None
    if state is not None:
        state = _package_state(state)
        kind = "in_use" if state is PackageState.IN_USE else "stored"
        if kind == "stored":
            params["eq_state"] = state.value
    return tuple(given), kind, params


@functools.cache
def _claim_statements() -> tuple[Select[Any], ReturningUpdate[Any]]:
    """``claim_operations``' statements: the claimable operations' ids (oldest first, at most
    ``limit``), then the lease taken on those still claimable."""
    now = bindparam("now", type_=UTCDateTime())
    claimable = (_O.c.state.in_(_CLAIMABLE_OPERATION_STATES)) & or_(
        _O.c.lease_expires_at.is_(None), _O.c.lease_expires_at <= now
    )
    find = (
        select(_O.c.operation_id)
        .where(claimable)
        .order_by(_O.c.start_time, _O.c.operation_id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    take = (
        update(_O)
        .where(_O.c.operation_id.in_(bindparam("ids", expanding=True)), claimable)
        .values(
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("until", type_=UTCDateTime()),
        )
        .returning(*_O.c)
    )
    return find, take


# -- error translation ----------------------------------------------------------------------


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


# -- the store ------------------------------------------------------------------------------


class SqlStore(VnfRows, VnfPackageRows):
    """The gateway's store on one SQLAlchemy async engine (see the module docstring)."""

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

    # -- connections and transactions ------------------------------------------------------

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

    # -- life ------------------------------------------------------------------------------

    async def migrate(self) -> None:
        with _translate("migration"):
            # Fast path for every start after the first: already at head, no lock needed
            # (revisions only move forward).
            async with self._own(write=False) as conn:
                if await conn.run_sync(_current_revision) == HEAD_REVISION:
                    return
            async with self._own(write=True) as conn:
                if self.dialect == "postgresql":
                    # Replicas starting together queue here; the later ones find head applied.
                    # Keyed by schema, so separate schemas in one database do not wait.
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:key || current_schema()))"),
                        {"key": "netweave-migrate:"},
                    )
                await conn.run_sync(_upgrade_to_head)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S), self._own(write=False) as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        self._close_reader()
        await self._engine.dispose()

    def outbox(self) -> OutboxStore:
        from netweave.store.outbox import OutboxStore  # here: that module imports this one

        return OutboxStore(self)

    async def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""
        with _translate("reading the schema revision"):
            async with self._conn(write=False) as conn:
                return await conn.run_sync(_current_revision)

    # -- generic helpers -------------------------------------------------------------------

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
        """The row whose ``column`` (a unique key) is ``value``, by a statement built once."""
        with _translate(what):
            async with self._conn(write=False) as conn:
                row = (await conn.execute(_select_by(table, column), {"key": value})).first()
        return cast("Row[Any] | None", row)

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

    # -- packages --------------------------------------------------------------------------

    async def add_package(self, record: PackageRecord) -> None:
        _check_stored_package_state(record.state)
        _require_aware("created_at", record.created_at)
        _require_aware("updated_at", record.updated_at)
        with self._tracking(self._package_writes):
            await self._insert(f"package {record.package_id!r}", _P, _values(record))

    async def get_package(self, package_id: str) -> PackageRecord | None:
        writes = self._package_writes.counts()
        cached = self._packages.get(package_id)
        if cached is not None and cached[0] == writes:
            return _copy_package(cached[1])
        row = await self._get_by("reading a package", _P, "package_id", package_id)
        if row is None:
            return None
        record = _package(row)
        if self.sole_writer and self._package_writes.counts() == writes:
            if len(self._packages) >= _MAX_CACHED_PACKAGES:
                self._packages.clear()  # bounded; refilled by the next reads
            self._packages[package_id] = (writes, _copy_package(record))
        return record

    async def find_package(self, name: str, version: str) -> PackageRecord | None:
        row = await self._get(
            "finding a package", _P, (_P.c.name == name) & (_P.c.version == version)
        )
        return None if row is None else _package(row)

    async def list_packages(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        package_type: str | None = None,
        adapter: str | None = None,
        state: PackageState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_P.c.name, name),
            (_P.c.version, version),
            (_P.c.package_type, package_type),
            (_P.c.adapter, adapter),
        ):
            if value is not None:
                conditions.append(column == value)
        if state is not None:
            state = _package_state(state)
            in_use = exists().where(_D.c.package_id == _P.c.package_id)
            if state is PackageState.IN_USE:
                conditions.append(in_use)
            else:
                # The state a client sees is IN_USE whenever a deployment uses the package,
                # so the other states select only unused packages in that stored state.
                conditions.extend((_P.c.state == state.value, ~in_use))
        return await self._page(
            "listing packages",
            _P,
            conditions,
            (_P.c.name, _P.c.version),
            _package,
            limit,
            offset,
        )

    async def update_package(self, package_id: str, **changes: Any) -> PackageRecord:
        values = _changes(PackageRecord, _P, changes, key="package_id")
        if "state" in values:
            values["state"] = _check_stored_package_state(values["state"]).value
        values.setdefault("updated_at", _now())
        with self._tracking(self._package_writes):
            row = await self._update(
                f"package {package_id!r}", _P, ("package_id", package_id), values
            )
        return _package(row)

    async def delete_package(self, package_id: str) -> None:
        with self._tracking(self._package_writes):
            await self._delete(f"package {package_id!r}", _P, _P.c.package_id == package_id)

    async def package_ids_in_use(self, package_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(package_ids))
        found: set[str] = set()
        with _translate("checking packages in use"):
            async with self._conn(write=False) as conn:
                for start in range(0, len(ids), _IN_CHUNK):
                    chunk = ids[start : start + _IN_CHUNK]
                    result = await conn.execute(
                        select(_D.c.package_id).where(_D.c.package_id.in_(chunk)).distinct()
                    )
                    found.update(result.scalars())
        return found

    async def package_backend_refs(self, adapter: str) -> set[str]:
        # One column, no record conversion: this runs over every package of an adapter (on
        # SQLite on the driver itself: through SQLAlchemy, 100 000 rows held the loop ~1 s).
        what = "reading package references"
        statement = _package_refs_statement()
        rows = self._driver_rows(what, statement, {"adapter": adapter})
        if rows is not None:
            return {row[0] for row in rows}
        with _translate(what):
            async with self._conn(write=False) as conn:
                result = await conn.execute(statement, {"adapter": adapter})
                return set(result.scalars())

    async def package_view(self, package_id: str) -> tuple[PackageRecord, bool] | None:
        """A package and whether a deployment uses it (``IN_USE``), in one statement."""
        views = await self._views(
            "reading a package", _package_view_statement(), {"key": package_id}
        )
        return views[0] if views else None

    async def _views(
        self, what: str, statement: Select[Any], params: Mapping[str, Any]
    ) -> list[tuple[PackageRecord, bool]]:
        """Package views of ``statement``'s rows. On the SQLite reader (see ``_read``) the
        statement compiled once runs on the driver itself: SQLAlchemy's per-statement work
        (cache key, execution context, result processing) was most of a point read."""
        convert = _SQLITE_PACKAGE_ROW
        rows = self._driver_rows(what, statement, params) if convert is not None else None
        if rows is None or convert is None:
            return [_package_view(row) for row in await self._read(what, statement, params)]
        return [convert(row) for row in rows]

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

    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool]:
        """A page of packages in (name, version) order, each with whether it is in use, and
        whether more follow: ``offset`` rows skipped after the (name, version) ``after``
        (keyset: the index finds the start, so a deep page costs what the first one does)."""
        limit, offset = _page_bounds(limit, offset)
        names, kind, params = _view_params(equal, state)
        statement = _package_view_statements(names, kind, after is not None)[1]
        # One row more than the page says whether another follows, without a count.
        params.update(page_limit=limit + 1, page_offset=offset)
        if after is not None:
            params.update(after_name=after[0], after_version=after[1])
        views = await self._views("listing packages", statement, params)
        return views[:limit], len(views) > limit

    async def count_packages(
        self, *, equal: Mapping[str, Any], state: PackageState | None = None
    ) -> int:
        """How many packages ``package_views`` pages through with these filters."""
        names, kind, params = _view_params(equal, state)
        rows = await self._read(
            "counting packages", _package_view_statements(names, kind, False)[0], params
        )
        return int(rows[0][0])

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

    # -- deployments -----------------------------------------------------------------------

    async def add_deployment(self, record: DeploymentRecord) -> None:
        _require_aware("created_at", record.created_at)
        _require_aware("updated_at", record.updated_at)
        await self._insert(f"deployment {record.deployment_id!r}", _D, _values(record))

    async def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        row = await self._get_by("reading a deployment", _D, "deployment_id", deployment_id)
        return None if row is None else _deployment(row)

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

    # -- operations ------------------------------------------------------------------------

    async def add_operation(self, record: OperationRecord) -> None:
        _require_aware("start_time", record.start_time)
        _require_aware("state_entered_time", record.state_entered_time)
        values = _values(record)
        try:
            await self._insert(f"operation {record.operation_id!r}", _O, values)
        except AlreadyExists as error:
            if not error.details.get("key", "").startswith("deployment_id="):
                raise
            raise AlreadyExists(
                f"deployment {record.deployment_id!r} already has an unfinished operation",
                details={"deploymentId": record.deployment_id},
            ) from error

    async def get_operation(self, operation_id: str) -> OperationRecord | None:
        row = await self._get_by("reading an operation", _O, "operation_id", operation_id)
        return None if row is None else _operation(row)

    async def list_operations(
        self,
        *,
        deployment_id: str | None = None,
        state: OperationState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        return await self._page_where_equal(
            "listing operations",
            _O,
            {"deployment_id": deployment_id, "state": _plain(state)},
            ("start_time", "operation_id"),
            _operation,
            limit,
            offset,
        )

    async def update_operation(
        self,
        operation_id: str,
        *,
        expected_state: OperationState | None = None,
        **changes: Any,
    ) -> OperationRecord:
        what = f"operation {operation_id!r}"
        values: dict[str, Any] = _changes(OperationRecord, _O, changes, key="operation_id")
        if "operation_type" in values:
            values["operation_type"] = _enum(
                OperationType, "operation_type", values["operation_type"]
            ).value
        if "state" in values:
            new_state = _enum(OperationState, "state", values["state"]).value
            values["state"] = new_state
            if new_state in _TERMINAL_OPERATION_STATES:
                # A terminal operation is never claimed again: its lease goes in the same
                # write, so the worker need not release it in a write of its own.
                values.setdefault("lease_owner", None)
                values.setdefault("lease_expires_at", None)
        # Only a real transition restarts the clock; decided in SQL, atomically.
        clock = "state" in values and "state_entered_time" not in values
        expected = (
            None
            if expected_state is None
            else _enum(OperationState, "expected_state", expected_state)
        )
        params = {f"new_{name}": value for name, value in values.items()}
        params["key"] = operation_id
        if clock:
            params["entered_at"] = _now()
            params["to_state"] = values["state"]
        if expected is not None:
            params["expected"] = expected.value
        stmt = _update_operation(tuple(values), clock=clock, expected=expected is not None)
        with _translate(what, table=_O, values=values):
            async with self._conn(write=True, savepoint=True) as conn:
                row = (await conn.execute(stmt, params)).first()
                if row is None:
                    actual = (
                        await conn.execute(
                            select(_O.c.state).where(_O.c.operation_id == operation_id)
                        )
                    ).scalar_one_or_none()
        if row is not None:
            return _operation(row)
        if actual is None:
            raise NotFound(f"{what}: not found")
        assert expected is not None  # without it, an existing row is always updated
        raise Conflict(
            f"{what} is {actual}, expected {expected.value}",
            details={"operationId": operation_id, "state": actual, "expected": expected.value},
        )

    async def claim_operations(
        self, *, owner: str, lease_seconds: float, limit: int, now: datetime
    ) -> list[OperationRecord]:
        _require_aware("now", now)
        _check_lease(owner, lease_seconds)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInput("limit must be a non-negative integer", details={"field": "limit"})
        if limit == 0:
            return []
        until = now + timedelta(seconds=lease_seconds)
        find, take = _claim_statements()
        with _translate("claiming operations"):
            async with self._conn(write=True) as conn:
                # PostgreSQL: rows another claimer holds are skipped, not waited for. SQLite
                # ignores FOR UPDATE; there the write lock (BEGIN IMMEDIATE) makes the
                # select-then-update atomic.
                found = await conn.execute(find, {"now": now, "limit": min(limit, MAX_PAGE_LIMIT)})
                ids = list(found.scalars())
                if not ids:
                    return []
                rows = await conn.execute(
                    take, {"ids": ids, "now": now, "owner": owner, "until": until}
                )
                claimed = [_operation(row) for row in rows]
        claimed.sort(key=lambda op: (op.start_time, op.operation_id))
        return claimed

    async def renew_lease(
        self, operation_id: str, *, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        _require_aware("now", now)
        _check_lease(owner, lease_seconds)
        with _translate(f"renewing the lease of operation {operation_id!r}"):
            async with self._conn(write=True) as conn:
                result = await conn.execute(
                    update(_O)
                    .where(_O.c.operation_id == operation_id, _O.c.lease_owner == owner)
                    .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                )
        return bool(result.rowcount)

    async def release_lease(self, operation_id: str, *, owner: str) -> None:
        with _translate(f"releasing the lease of operation {operation_id!r}"):
            async with self._conn(write=True) as conn:
                await conn.execute(
                    update(_O)
                    .where(_O.c.operation_id == operation_id, _O.c.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )

    async def active_operation_for(self, deployment_id: str) -> OperationRecord | None:
        with _translate("reading the active operation"):
            async with self._conn(write=False) as conn:
                row = (
                    await conn.execute(
                        select(_O)
                        .where(
                            _O.c.deployment_id == deployment_id,
                            _O.c.state.not_in(_TERMINAL_OPERATION_STATES),
                        )
                        .order_by(_O.c.start_time, _O.c.operation_id)
                        .limit(1)
                    )
                ).first()
        return None if row is None else _operation(row)

    # -- the reconciler's shards -----------------------------------------------------------

    async def claim_reconcile_shards(
        self, *, owner: str, shards: int, want: int, lease_seconds: float, now: datetime
    ) -> list[int]:
        _require_aware("now", now)
        _check_lease(owner, lease_seconds)
        if not 1 <= shards <= 4096 or not 0 <= want <= shards:
            raise InvalidInput("shards must be 1..4096 and want 0..shards")
        until = now + timedelta(seconds=lease_seconds)
        free = or_(_R.c.lease_owner == owner, _R.c.lease_expires_at.is_(None))
        free = or_(free, _R.c.lease_expires_at <= now)
        real = (_R.c.shard >= 0) & (_R.c.shard < shards)
        from sqlalchemy.dialects import postgresql as pg
        from sqlalchemy.dialects import sqlite as lite

        dialect = pg if self.dialect == "postgresql" else lite
        with _translate("claiming reconcile shards"):
            async with self._conn(write=True) as conn:
                # The replica's presence (a negative shard of its own), so that the others
                # count it when they compute their fair share even while it holds none.
                presence = dialect.insert(_R).values(
                    shard=_presence_shard(owner), lease_owner=owner, lease_expires_at=until
                )
                await conn.execute(
                    presence.on_conflict_do_update(
                        index_elements=[_R.c.shard],
                        set_={"lease_owner": owner, "lease_expires_at": until},
                    )
                )
                existing = set((await conn.execute(select(_R.c.shard).where(real))).scalars())
                missing = [n for n in range(shards) if n not in existing]
                if missing:
                    # Another replica may insert the same rows meanwhile: theirs count.
                    await conn.execute(
                        dialect.insert(_R)
                        .values([{"shard": n} for n in missing])
                        .on_conflict_do_nothing()
                    )
                mine = list(
                    (
                        await conn.execute(
                            select(_R.c.shard)
                            .where(real, _R.c.lease_owner == owner)
                            .where(_R.c.lease_expires_at > now)
                            .order_by(_R.c.shard)
                            .with_for_update(skip_locked=True)
                        )
                    ).scalars()
                )
                keep = mine[:want]
                more = want - len(keep)
                if more > 0:
                    found = (
                        await conn.execute(
                            select(_R.c.shard)
                            .where(real, free, _R.c.shard.not_in(keep or [-1]))
                            .order_by(_R.c.shard)
                            .limit(more)
                            .with_for_update(skip_locked=True)
                        )
                    ).scalars()
                    keep += list(found)
                if keep:
                    await conn.execute(
                        update(_R)
                        .where(_R.c.shard.in_(keep))
                        .values(lease_owner=owner, lease_expires_at=until)
                    )
                dropped = [n for n in mine if n not in keep]
                if dropped:
                    await conn.execute(
                        update(_R)
                        .where(_R.c.shard.in_(dropped), _R.c.lease_owner == owner)
                        .values(lease_owner=None, lease_expires_at=None)
                    )
        return sorted(keep)

    async def reconcile_owners(self, *, now: datetime) -> set[str]:
        _require_aware("now", now)
        with _translate("reading reconcile shard owners"):
            async with self._conn(write=False) as conn:
                rows = await conn.execute(
                    select(_R.c.lease_owner)
                    .where(_R.c.lease_owner.is_not(None), _R.c.lease_expires_at > now)
                    .distinct()
                )
                return {str(owner) for owner in rows.scalars()}

    async def release_reconcile_shards(self, *, owner: str) -> None:
        with _translate("releasing reconcile shards"):
            async with self._conn(write=True) as conn:
                await conn.execute(
                    update(_R)
                    .where(_R.c.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )

    # -- subscriptions ---------------------------------------------------------------------

    def subscription_writes(self) -> tuple[int, int]:
        return self._subscription_writes.counts()

    @property
    def sole_writer(self) -> bool:
        return self._sqlite  # SQLite serves one process (docs/replicas.md)

    def _tracking(self, writes: _Writes) -> contextlib.AbstractContextManager[None]:
        return writes.tracking(self._current.get() if self._joinable() is not None else None)

    async def add_subscription(self, record: SubscriptionRecord) -> None:
        _require_aware("created_at", record.created_at)
        with self._tracking(self._subscription_writes):
            await self._insert(f"subscription {record.subscription_id!r}", _S, _values(record))

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        row = await self._get_by("reading a subscription", _S, "subscription_id", subscription_id)
        return None if row is None else _subscription(row)

    async def list_subscriptions(self, *, limit: int = 100, offset: int = 0) -> Page:
        return await self._page_where_equal(
            "listing subscriptions",
            _S,
            {},
            ("created_at", "subscription_id"),
            _subscription,
            limit,
            offset,
        )

    async def delete_subscription(self, subscription_id: str) -> None:
        with self._tracking(self._subscription_writes):
            await self._delete(
                f"subscription {subscription_id!r}", _S, _S.c.subscription_id == subscription_id
            )

    # -- idempotency keys ------------------------------------------------------------------

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

    # -- API tokens ------------------------------------------------------------------------

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


# -- helpers used by the store ------------------------------------------------------------


def _enum(kind: type[_E], name: str, value: Any) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(
            f"{name} {value!r} is not one of {[m.value for m in kind]}", details={"field": name}
        ) from None


def _package_state(state: Any) -> PackageState:
    return _enum(PackageState, "state", state)


def _check_stored_package_state(state: Any) -> PackageState:
    value = _package_state(state)
    if value not in _STORED_PACKAGE_STATES:
        raise InvalidInput(
            f"package state {value.value} is derived from deployments and cannot be stored",
            details={"field": "state"},
        )
    return value


def _changes(
    record_type: type[Any], table: Table, changes: dict[str, Any], *, key: str
) -> dict[str, Any]:
    allowed = {f.name for f in fields(record_type)} - {key}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(
            f"cannot change {', '.join(unknown)} of a {record_type.__name__}",
            details={"fields": unknown},
        )
    values = {name: _plain(value) for name, value in changes.items()}
    for name, value in values.items():
        column = table.c[name]
        if value is None and not column.nullable:
            raise InvalidInput(f"{name} cannot be null", details={"field": name})
        if isinstance(column.type, UTCDateTime) and value is not None:
            _require_aware(name, value)
    return values


def _check_lengths(table: Table, values: Mapping[str, Any]) -> None:
    """Refuse strings longer than their column on every backend (SQLite would store them)."""
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        length = getattr(table.c[name].type, "length", None)
        if length is not None and len(value) > length:
            raise InvalidInput(
                f"{name} is longer than {length} characters",
                details={"field": name, "maxLength": length},
            )


def _presence_shard(owner: str) -> int:
    """The negative row a reconciling replica keeps alive beside its shards."""
    import zlib

    return -1 - zlib.crc32(owner.encode()) % (2**30)


def _check_lease(owner: str, lease_seconds: float) -> None:
    if not owner:
        raise InvalidInput("lease owner must not be empty", details={"field": "owner"})
    if not 0 <= lease_seconds <= 366 * 24 * 3600:
        raise InvalidInput(
            f"lease_seconds must be between 0 and a year, got {lease_seconds}",
            details={"field": "lease_seconds"},
        )


def head_revision() -> str | None:
    """The newest revision shipped, as Alembic sees it (imports Alembic: slow, tests only)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "sqlite" and not inspect(connection).get_table_names():
        # A new SQLite file (every first start of the embedded default): the head schema at
        # once, without importing Alembic and replaying its steps. PostgreSQL keeps Alembic,
        # under the replicas' advisory lock. tests/store/test_store_migrations.py checks
        # that both give the same schema.
        _create_at_head(connection)
        return
    _alembic_upgrade(connection)


def _create_at_head(connection: Connection) -> None:
    metadata.create_all(connection)
    # Alembic's own bookkeeping table, as it creates it, stamped at head.
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(insert(version).values(version_num=HEAD_REVISION))


def _alembic_upgrade(connection: Connection) -> None:
    # Alembic is imported only when there is something to apply: it costs start-up time.
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, "head")
    except CommandError as error:
        # Typically a database migrated by a newer netweave (a revision this one lacks).
        raise NetweaveError(
            f"cannot migrate the database to revision {HEAD_REVISION}: {error}"
        ) from error


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return next(iter(versions), None)


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


def create_store(url: str, *, echo: bool = False, schema: str | None = None) -> SqlStore:
    """A store for ``url`` (``sqlite:///path/netweave.db`` or ``postgresql://…``).

    ``schema`` (PostgreSQL only) puts every table in that schema (it must exist), via the
    connections' ``search_path``.
    """
    engine_url = _engine_url(url)
    if engine_url.get_backend_name() == "sqlite":
        if schema is not None:
            raise InvalidInput(
                "schema is only supported on PostgreSQL", details={"field": "schema"}
            )
        return SqlStore(_sqlite_engine(engine_url, echo=echo))
    server_settings = {"application_name": "netweave"}
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise InvalidInput(f"invalid schema name {schema!r}", details={"field": "schema"})
        server_settings["search_path"] = schema
    return SqlStore(
        create_async_engine(
            engine_url,
            echo=echo,
            # Enough connections for a few dozen concurrent requests per replica.
            pool_size=10,
            max_overflow=20,
            connect_args={"timeout": CONNECT_TIMEOUT_S, "server_settings": server_settings},
        )
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


__all__ = [
    "HEAD_REVISION",
    "MAX_PAGE_LIMIT",
    "MIGRATIONS_DIR",
    "SqlStore",
    "create_store",
    "head_revision",
    "urgent_writes",
]

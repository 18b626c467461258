"""Errors leave the store as netweave errors only; bad arguments never crash it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netweave.errors import BackendUnavailable, InvalidInput
from netweave.store import sqlite_inline
from netweave.store.sql import SqlStore, create_store
from store_factories import package


def _closed_port() -> int:
    # A port nobody listens on: bind, read the number, close.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_ping(store: SqlStore) -> None:
    assert await store.ping() is True


async def test_unreachable_postgresql_is_backend_unavailable() -> None:
    store = create_store(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    try:
        assert await store.ping() is False
        with pytest.raises(BackendUnavailable):
            await store.get_package("x")
        with pytest.raises(BackendUnavailable):
            await store.add_package(package())
        with pytest.raises(BackendUnavailable):
            await store.migrate()
        with pytest.raises(BackendUnavailable):
            async with store.transaction():
                pass
    finally:
        await store.close()


async def test_missing_postgresql_database_is_backend_unavailable() -> None:
    # Whether or not the server runs, a database that does not exist is "unavailable".
    store = create_store("postgresql://postgres@127.0.0.1:5432/nw_no_such_database")
    try:
        assert await store.ping() is False
        with pytest.raises(BackendUnavailable):
            await store.count_api_tokens()
    finally:
        await store.close()


async def test_unusable_sqlite_file_is_backend_unavailable(tmp_path: Path) -> None:
    # The "database file" is a directory: SQLite cannot open it.
    (tmp_path / "db").mkdir()
    store = create_store(f"sqlite:///{tmp_path / 'db'}")
    try:
        assert await store.ping() is False
        with pytest.raises(BackendUnavailable):
            await store.list_packages()
    finally:
        await store.close()


async def test_sqlite_creates_the_data_directory(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'netweave.db'}")
    try:
        await store.migrate()
        assert (tmp_path / "a" / "b" / "netweave.db").is_file()
        assert await store.ping()
    finally:
        await store.close()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path / 'netweave.db'}")
    try:
        async with store.engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        assert journal == "wal"
        # SQLite itself blocks (the loop) only briefly; longer waits are awaited in BEGIN.
        assert busy == sqlite_inline.BLOCKING_BUSY_MS
        assert fks == 1
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url", ["mysql://root@127.0.0.1/x", "not a url", "http://127.0.0.1/db", ""]
)
def test_unsupported_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        create_store(url)


def test_schema_option_is_checked() -> None:
    with pytest.raises(InvalidInput):
        create_store("postgresql://postgres@127.0.0.1/test", schema="x; DROP TABLE y")
    with pytest.raises(InvalidInput):
        create_store("sqlite:///netweave.db", schema="s")


async def test_values_the_columns_refuse_are_invalid_input(store: SqlStore) -> None:
    await store.add_package(package())
    with pytest.raises(InvalidInput):
        await store.update_package("nginx-1.0.0", extensions={"x": object()})
    with pytest.raises(InvalidInput):
        await store.update_package("nginx-1.0.0", name=None)
    assert await store.get_package("nginx-1.0.0") == package()


async def test_too_long_strings_are_invalid_input_on_every_backend(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="name is longer than 253") as caught:
        await store.add_package(package(name="n" * 254, package_id="long"))
    assert caught.value.details == {"field": "name", "maxLength": 253}
    await store.add_package(package())
    with pytest.raises(InvalidInput, match="provider"):
        await store.update_package("nginx-1.0.0", provider="p" * 254)
    # Text columns have no limit.
    updated = await store.update_package("nginx-1.0.0", description="d" * 100_000)
    assert len(updated.description or "") == 100_000
    assert (await store.list_packages()).total == 1


_HOLD_WRITE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _lock_from_another_process(db: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


async def test_sqlite_write_waits_for_another_process_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """SQLite runs on the loop's thread: a writer waiting for another process's lock awaits."""
    db = tmp_path / "netweave.db"
    store = create_store(f"sqlite:///{db}")
    try:
        await store.migrate()
        holder = _lock_from_another_process(db, 0.6)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        await store.add_package(package("waited"))
        waited = time.monotonic() - started
        ticker.cancel()
        holder.wait(timeout=10)
        assert waited >= 0.3  # it really waited for the other process's COMMIT
        # The loop ran on meanwhile: a blocked loop would have ticked at most once or twice.
        assert ticks >= 10, ticks
        assert (await store.get_package(package("waited").package_id)) is not None
    finally:
        await store.close()


async def test_sqlite_write_gives_up_on_a_lock_held_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "netweave.db"
    store = create_store(f"sqlite:///{db}")
    try:
        await store.migrate()
        monkeypatch.setattr("netweave.store.sqlite_inline.BUSY_TIMEOUT_MS", 200)
        holder = _lock_from_another_process(db, 2.0)
        try:
            with pytest.raises(BackendUnavailable, match="locked"):
                await store.add_package(package("refused"))
        finally:
            holder.wait(timeout=10)
        # Nothing was stored, and the store works again once the lock is gone.
        assert (await store.get_package(package("refused").package_id)) is None
        await store.add_package(package("refused"))
    finally:
        await store.close()

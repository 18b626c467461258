"""Packages read by id are kept in memory on SQLite (one process writes it), and never served
stale: not after a write, not from a write still in an open transaction, nor one rolled back.
On PostgreSQL (other replicas write) every read asks the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from netweave.models import PackageState
from netweave.store.sql import SqlStore
from sqlalchemy import event
from store_factories import package
from support.postgres import Backend

ID = "nginx-1.0.0"


@contextmanager
def statements(store: SqlStore) -> Iterator[list[str]]:
    """The SQL statements ``store`` sends while the block runs."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def package_reads(sent: list[str]) -> int:
    return sum(1 for s in sent if s.lstrip().startswith("SELECT") and "FROM packages" in s)


async def test_sqlite_reads_a_package_once_until_it_changes(backend: Backend, store: SqlStore):
    await store.add_package(package())
    with statements(store) as sent:
        first = await store.get_package(ID)
        second = await store.get_package(ID)
    assert first == second
    assert first is not None
    assert package_reads(sent) == (1 if backend.name == "sqlite" else 2)
    await store.update_package(ID, state=PackageState.DEPRECATED)
    changed = await store.get_package(ID)
    assert changed is not None
    assert changed.state is PackageState.DEPRECATED
    await store.delete_package(ID)
    assert await store.get_package(ID) is None


async def test_a_returned_package_changed_by_its_caller_leaves_the_next_read_alone(
    store: SqlStore,
) -> None:
    await store.add_package(package(extensions={"chart": {"deps": ["common"]}}))
    got = await store.get_package(ID)
    assert got is not None
    got.description = "scribbled"
    got.extensions["chart"]["deps"].append("more")
    again = await store.get_package(ID)
    assert again is not None
    assert again.description is None
    assert again.extensions == {"chart": {"deps": ["common"]}}


async def test_a_rolled_back_change_is_never_served(store: SqlStore) -> None:
    await store.add_package(package())
    assert await store.get_package(ID) is not None  # cached on SQLite
    try:
        async with store.transaction():
            await store.update_package(ID, description="never committed")
            inside = await store.get_package(ID)
            assert inside is not None
            assert inside.description == "never committed"  # the transaction's own view
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    after = await store.get_package(ID)
    assert after is not None
    assert after.description is None


async def test_a_read_while_another_task_changes_the_package_is_not_kept(
    store: SqlStore,
) -> None:
    """Another task reads the committed package while a transaction changes it: that read's
    copy must not be served after the transaction commits."""
    await store.add_package(package())
    changed = asyncio.Event()
    commit = asyncio.Event()

    async def change() -> None:
        async with store.transaction():
            await store.update_package(ID, description="new")
            changed.set()
            await commit.wait()

    task = asyncio.create_task(change())
    await changed.wait()
    during = await store.get_package(ID)  # its own connection: the committed row
    assert during is not None
    assert during.description is None
    commit.set()
    await task
    after = await store.get_package(ID)
    assert after is not None
    assert after.description == "new"


async def test_postgresql_sees_another_replicas_change(backend: Backend, store: SqlStore):
    await store.add_package(package())
    assert await store.get_package(ID) is not None
    if backend.name != "postgresql":
        return  # SQLite serves one process: no other replica can write
    other = backend.connect()
    try:
        await other.update_package(ID, description="from another replica")
    finally:
        await other.close()
    seen = await store.get_package(ID)
    assert seen is not None
    assert seen.description == "from another replica"


async def test_read_package_shares_the_cached_record_and_still_follows_writes(
    backend: Backend, store: SqlStore
) -> None:
    """``read_package`` (rendering only) answers the cached record itself on SQLite, no copy,
    with what ``get_package`` answers; a write is seen at once, as by ``get_package``."""
    await store.add_package(package(extensions={"chart": {"deps": ["common"]}}))
    await store.get_package(ID)  # cached now (SQLite)
    with statements(store) as sent:
        first = await store.read_package(ID)
        second = await store.read_package(ID)
    assert first is not None and first == await store.get_package(ID)
    if backend.name == "sqlite":
        assert first is second and package_reads(sent) == 0
    else:
        assert package_reads(sent) == 2
    await store.update_package(ID, state=PackageState.DEPRECATED)
    changed = await store.read_package(ID)
    assert changed is not None and changed.state is PackageState.DEPRECATED
    await store.delete_package(ID)
    assert await store.read_package(ID) is None

"""A joined VNF instance page asked again is answered as read while nothing was committed
(SQLite), and read again after any commit: of this store, of another store on the same file (as
another process would), of a plain connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from netweave.store.sql import SqlStore
from netweave.store.vnf import ColumnTerm, SummaryPage, VnfInstanceRecord
from support.postgres import Backend

T0 = datetime(2027, 1, 1, tzinfo=UTC)
WHERE = [ColumnTerm("vnfd_id", "in", ("app-1.0.0",))]


def instance(n: int) -> VnfInstanceRecord:
    return VnfInstanceRecord(
        vnf_instance_id=f"vnf-{n:03d}",
        vnfd_id="app-1.0.0",
        created_at=T0 + timedelta(seconds=n),
        name=f"name-{n}",
    )


async def page(store: SqlStore, after: tuple[datetime, str] | None = None) -> SummaryPage:
    return await store.vnf_instance_summaries(after=after, limit=2, where=WHERE)


def names(summary: SummaryPage) -> list[str]:
    return [row[1] for row in summary.rows]


async def test_a_page_is_kept_until_a_commit(store: SqlStore, backend: Backend) -> None:
    for n in range(4):
        await store.add_vnf_instance(instance(n))
    first = await page(store)
    second = await page(store, (T0 + timedelta(seconds=1), "vnf-001"))
    assert names(first) == ["name-0", "name-1"] and names(second) == ["name-2", "name-3"]
    if backend.name == "sqlite":
        # Nothing committed since: the same pages, not read again.
        assert await page(store) is first
        assert await page(store, (T0 + timedelta(seconds=1), "vnf-001")) is second

    await store.update_vnf_instance("vnf-000", name="by this store")
    assert names(await page(store)) == ["by this store", "name-1"]

    other = backend.connect()  # another connection pool on the same database
    try:
        await other.update_vnf_instance("vnf-001", name="by another store")
    finally:
        await other.close()
    assert names(await page(store)) == ["by this store", "by another store"]

    if backend.name == "sqlite":
        database = store.engine.url.database
        assert database is not None
        with sqlite3.connect(database) as plain:  # commits on leaving the block
            plain.execute("UPDATE vnf_instances SET name = 'by hand' WHERE vnf_instance_id = ?",
                          ("vnf-000",))  # fmt: skip
        plain.close()
        assert names(await page(store)) == ["by hand", "by another store"]
        kept = await page(store)
        assert await page(store) is kept

    # A page of the same rows read within a transaction sees its own uncommitted write.
    async with store.transaction():
        await store.update_vnf_instance("vnf-001", name="in a transaction")
        assert names(await page(store)) == ["by hand" if backend.name == "sqlite" else
                                            "by this store", "in a transaction"]  # fmt: skip
    assert names(await page(store))[1] == "in a transaction"

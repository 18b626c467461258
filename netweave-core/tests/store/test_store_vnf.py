"""The ETSI face's rows (VNF instances, VNF LCM op occs) on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from netweave.errors import AlreadyExists, Conflict, NotFound
from netweave.models import OperationState, PackageState
from netweave.store import PackageRecord
from netweave.store.engine import _sqlite_sql
from netweave.store.sql import SqlStore, create_store
from netweave.store.vnf import (
    ColumnTerm,
    SummaryPage,
    VnfInstanceRecord,
    VnfLcmOpOccRecord,
    _summary_statement,
)
from store_factories import deployment, operation

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def instance(n: int, **changes: object) -> VnfInstanceRecord:
    record = VnfInstanceRecord(
        vnf_instance_id=f"vnf-{n:03d}",
        vnfd_id="app-1.0.0",
        created_at=T0 + timedelta(seconds=n // 2),  # pairs share a timestamp: ids break ties
        name=f"name-{n}",
        instance_metadata={"n": n},
        aspects={"default": {"replicaKey": "replicaCount"}},
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


async def test_instances_round_trip_versions_and_keyset_pages(store: SqlStore) -> None:
    for n in range(5):
        await store.add_vnf_instance(instance(n))
    with pytest.raises(AlreadyExists):
        await store.add_vnf_instance(instance(0))
    got = await store.get_vnf_instance("vnf-002")
    assert got is not None and got.instance_metadata == {"n": 2} and got.version == 1
    assert got.aspects == {"default": {"replicaKey": "replicaCount"}}
    assert await store.get_vnf_instance("nope") is None

    first = await store.list_vnf_instances(after=None, limit=3)
    assert [r.vnf_instance_id for r in first] == ["vnf-000", "vnf-001", "vnf-002"]
    last = first[-1]
    rest = await store.list_vnf_instances(after=(last.created_at, last.vnf_instance_id), limit=3)
    assert [r.vnf_instance_id for r in rest] == ["vnf-003", "vnf-004"]

    updated = await store.update_vnf_instance(
        "vnf-002", expected_version=1, name="renamed", instance_metadata={"k": 1}
    )
    assert (updated.name, updated.instance_metadata, updated.version) == ("renamed", {"k": 1}, 2)
    with pytest.raises(Conflict) as stale:
        await store.update_vnf_instance("vnf-002", expected_version=1, name="again")
    assert stale.value.details["version"] == 2
    with pytest.raises(NotFound):
        await store.update_vnf_instance("nope", name="x")

    # A list may read only the JSON columns it renders; the keyset still splits tied stamps.
    lean = await store.list_vnf_instances(after=None, limit=5, json_columns={"metadata"})
    assert [(r.instance_metadata, r.aspects, r.name) for r in lean[:2]] == [
        ({"n": 0}, {}, "name-0"),
        ({"n": 1}, {}, "name-1"),
    ]
    tied = lean[2]  # vnf-002 shares its stamp with vnf-003
    after_tie = await store.list_vnf_instances(
        after=(tied.created_at, tied.vnf_instance_id), limit=5, json_columns=()
    )
    assert [r.vnf_instance_id for r in after_tie] == ["vnf-003", "vnf-004"]
    assert after_tie[0].instance_metadata == {} and after_tie[0].name == "name-3"

    await store.delete_vnf_instance("vnf-002")
    assert await store.get_vnf_instance("vnf-002") is None
    with pytest.raises(NotFound):
        await store.delete_vnf_instance("vnf-002")


async def test_op_occs_and_the_batched_reads(store: SqlStore) -> None:
    for n in range(3):
        await store.add_vnf_op_occ(
            VnfLcmOpOccRecord(
                op_occ_id=f"op-{n}",
                vnf_instance_id="vnf-000",
                operation="SCALE",
                start_time=T0 + timedelta(seconds=n),
                operation_params={"aspectId": "default", "n": n},
            )
        )
    page = await store.list_vnf_op_occs(after=(T0, "op-0"), limit=10)
    assert [r.op_occ_id for r in page] == ["op-1", "op-2"]
    changed = await store.update_vnf_op_occ("op-1", state="COMPLETED", changed_info={"a": 1})
    assert (changed.state, changed.changed_info) == ("COMPLETED", {"a": 1})
    got = await store.get_vnf_op_occ("op-1")
    assert got is not None and got.operation_params == {"aspectId": "default", "n": 1}
    deployments, operations = await store.deployments_and_operations(["nope"], ["op-1"])
    assert deployments == {} and operations == {}  # no native rows with these ids


async def test_joined_pages_follow_their_packages(store: SqlStore) -> None:
    """A joined page names each vnfdId's package as it is now: kept between pages, but read
    again once a package was written (changed or deleted)."""
    await store.add_package(
        PackageRecord(
            package_id="app-1.0.0", name="app", version="1.0.0", artifact_name="app.tgz",
            package_type="helm", state=PackageState.AVAILABLE, adapter="mem",
            backend_ref="app:1.0.0", created_at=T0, updated_at=T0, provider="first",
        )
    )  # fmt: skip
    for n in range(3):
        await store.add_vnf_instance(instance(n))
    where = [ColumnTerm("vnfd_id", "in", ("app-1.0.0",))]

    async def page() -> SummaryPage:
        return await store.vnf_instance_summaries(after=None, limit=2, where=where)

    first = await page()
    assert [row[0] for row in first.rows] == ["vnf-000", "vnf-001"] and first.more
    assert first.last == (T0, "vnf-001")
    assert first.packages == {"app-1.0.0": (True, "first", "app", "1.0.0")}
    assert (await page()).packages == first.packages
    await store.update_package("app-1.0.0", provider="second")
    assert (await page()).packages == {"app-1.0.0": (True, "second", "app", "1.0.0")}
    await store.delete_package("app-1.0.0")
    assert (await page()).packages == {"app-1.0.0": (False, None, "", "")}


@pytest.mark.parametrize("after", [False, True])
async def test_a_sqlite_page_of_stamps_filtered_on_vnfd_id_reads_the_index_alone(
    tmp_path: Path, after: bool
) -> None:
    """The common SOL003 list (filter on vnfdId, keyset pages) checks its kept items without
    visiting the table's rows on SQLite: the index holds every column a stamp reads."""
    store = create_store(f"sqlite:///{tmp_path / 'plan.db'}")
    await store.migrate()
    try:
        for n in range(3):
            await store.add_vnf_instance(instance(n))
        statement = _summary_statement((("vnfd_id", "in", 1),), after, False, True)
        sql, order = _sqlite_sql(statement)
        params = {"w0_0": "app-1.0.0", "page_limit": 3, "page_offset": 0}
        params |= {"after_at": "2027-01-01 00:00:00.000000", "after_id": "vnf-000"}
        with sqlite3.connect(tmp_path / "plan.db") as connection:
            plan = connection.execute(
                f"EXPLAIN QUERY PLAN {sql}", [params[name] for name in order]
            ).fetchall()
        scans = [row[3] for row in plan if "vnf_instances" in row[3]]
        assert scans and all(
            "USING COVERING INDEX ix_vnf_instances_vnfd_id_stamp" in scan for scan in scans
        ), plan
        where = [ColumnTerm("vnfd_id", "in", ("app-1.0.0",))]
        start = (T0, "vnf-000") if after else None
        stamps = await store.vnf_instance_stamps(after=start, limit=5, where=where)
        page = await store.vnf_instance_summaries(after=start, limit=5, where=where)
        ids = ["vnf-001", "vnf-002"] if after else ["vnf-000", "vnf-001", "vnf-002"]
        assert [stamp.split()[0] for stamp, _ in stamps.stamps] == ids
        assert {vnfd_id for _, vnfd_id in stamps.stamps} == {"app-1.0.0"}
        assert [row[1] for row in page.rows] == [f"name-{i[-1]}" for i in ids]
        assert [page.stamp(row) for row in page.rows] == [stamp for stamp, _ in stamps.stamps]
    finally:
        await store.close()


async def test_a_stamp_changes_with_every_write_of_what_a_list_item_shows(store: SqlStore) -> None:
    """A kept list item holds while its row's stamp does: renaming, describing, instantiating
    (deployment and operation) and the instantiate operation ending each change it."""
    await store.add_vnf_instance(instance(0))
    where = [ColumnTerm("vnfd_id", "in", ("app-1.0.0",))]

    async def stamp() -> tuple[str, str]:
        (only,) = (await store.vnf_instance_stamps(after=None, limit=5, where=where)).stamps
        page = await store.vnf_instance_summaries(after=None, limit=5, where=where)
        assert [page.stamp(row) for row in page.rows] == [only[0]]
        return only

    seen = [await stamp()]
    await store.update_vnf_instance("vnf-000", name="renamed")
    seen.append(await stamp())
    await store.update_vnf_instance("vnf-000", description="described")
    seen.append(await stamp())
    await store.add_deployment(deployment(package_id="app-1.0.0"))
    await store.add_operation(operation(0))
    await store.update_vnf_instance(
        "vnf-000", deployment_id="dep-web", instantiate_operation_id="op-00000"
    )
    seen.append(await stamp())
    assert seen[-1][0].endswith(" N")  # deployed, not yet instantiated
    # The operation ends: the instance row is not written, its stamp still changes.
    await store.update_operation("op-00000", state=OperationState.COMPLETED)
    seen.append(await stamp())
    assert seen[-1][0].endswith(" I")
    # A native update moves the deployment to another package: so does the row's vnfdId.
    await store.update_deployment("dep-web", package_id="app-2.0.0")
    (moved,) = (
        await store.vnf_instance_stamps(
            after=None, limit=5, where=[ColumnTerm("vnfd_id", "in", ("app-2.0.0", "app-1.0.0"))]
        )
    ).stamps
    assert moved == (seen[-1][0], "app-2.0.0")
    assert len(set(seen)) == len(seen), seen

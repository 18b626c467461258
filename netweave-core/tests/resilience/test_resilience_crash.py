"""R4: a real ``netweave serve`` on PostgreSQL is SIGKILLed with 20 operations in flight; a new
process finishes every one, none is lost, and no backend action is executed twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
from resilience_support import (
    AUTH,
    Replica,
    counts,
    create_deployment,
    execution_count,
    install_slowfix,
    register_package,
    wait_all_terminal,
    write_config,
)

OPERATIONS = 20
LEASE = 3.0


async def test_sigkill_with_operations_in_flight_loses_none_and_runs_none_twice(
    tmp_path: Path, pg_url: str
) -> None:
    pythonpath = install_slowfix(tmp_path / "site")
    url = pg_url
    # before/after: a kill lands both before the backend acted and after it acted but
    # before the gateway recorded COMPLETED (the case the idempotency key is for).
    config = write_config(
        tmp_path / "gw.yaml", store_url=url, dsn=url, before=1.0, after=1.5, lease=LEASE,
        workers=8,
    )  # fmt: skip
    first = Replica(config, tmp_path / "data", pythonpath)
    second: Replica | None = None
    try:
        async with httpx.AsyncClient(base_url=first.url, headers=AUTH, timeout=20) as client:
            await register_package(client)
            operation_ids = set()
            for n in range(OPERATIONS):
                operation_ids.add((await create_deployment(client, n))[1])
        # Kill once some backend actions happened but far from all.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await execution_count(url) >= 3:
                break
            await asyncio.sleep(0.05)
        executed_before_kill = await execution_count(url)
        first.kill()
        assert 0 < executed_before_kill < OPERATIONS, executed_before_kill

        second = Replica(config, tmp_path / "data", pythonpath)
        async with httpx.AsyncClient(base_url=second.url, headers=AUTH, timeout=20) as client:
            ops = await wait_all_terminal(client, operation_ids, seconds=90)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    calls, executions = await counts(url)

    # None lost: every operation is there, terminal; a FAILED_TEMP one carries its reason.
    assert {o["operationId"] for o in ops} == operation_ids
    for op in ops:
        assert op["state"] in {"COMPLETED", "FAILED_TEMP", "FAILED"}
        if op["state"] != "COMPLETED":
            assert op.get("error", {}).get("detail"), op
    states = Counter(o["state"] for o in ops)
    # None run twice: one execution per operation step, keyed the same across the restart.
    per_key = Counter(row["key"] for row in executions)
    assert set(per_key.values()) == {1}, per_key
    assert set(per_key) == {f"{op_id}:create" for op_id in operation_ids}
    keys_per_op: dict[str, set[str]] = {}
    for row in calls:
        keys_per_op.setdefault(row["operation_id"], set()).add(row["key"])
    assert all(len(keys) == 1 for keys in keys_per_op.values()), keys_per_op
    pids = {row["pid"] for row in calls}
    assert len(pids) == 2  # the killed process and its successor
    resumed = sum(1 for n in Counter(r["operation_id"] for r in calls).values() if n > 1)
    assert resumed >= 1  # the kill really hit operations mid-call
    print(
        f"\nR4: {OPERATIONS} operations, killed after {executed_before_kill} backend actions; "
        f"after restart: {dict(states)}; {resumed} calls resumed with the same key; "
        f"executions per key: {sorted(set(per_key.values()))}"
    )

"""R7: two ``netweave serve`` replicas on one PostgreSQL database process 150 operations, each
executed exactly once; one replica is SIGKILLed mid-run and the other takes over its leased
work once the lease expires.

150, not the 500 of earlier runs: with six workers per replica the kill still lands with most
operations queued, leased or running on both sides, which is what the test is about; 500 made
it the suite's longest test (over three minutes on a loaded machine) without a new case."""

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

OPERATIONS = 150
LEASE = 3.0
CONCURRENT_POSTS = 16


async def test_two_replicas_run_each_operation_once_and_survive_losing_one(
    tmp_path: Path, pg_url: str
) -> None:
    pythonpath = install_slowfix(tmp_path / "site")
    config = write_config(
        tmp_path / "gw.yaml", store_url=pg_url, dsn=pg_url, before=0.25, after=0.05,
        lease=LEASE, workers=6,
    )  # fmt: skip
    replicas: list[Replica] = []
    try:
        # One after the other: the first start migrates the empty database.
        replicas.append(Replica(config, tmp_path / "a", pythonpath))
        replicas.append(Replica(config, tmp_path / "b", pythonpath))
        a, b = replicas
        async with (
            httpx.AsyncClient(base_url=a.url, headers=AUTH, timeout=30) as ca,
            httpx.AsyncClient(base_url=b.url, headers=AUTH, timeout=30) as cb,
        ):
            await register_package(ca)
            gate = asyncio.Semaphore(CONCURRENT_POSTS)

            async def create(n: int) -> str:
                async with gate:
                    client = ca if n % 2 else cb  # requests spread across both replicas
                    return (await create_deployment(client, n))[1]

            operation_ids = set(await asyncio.gather(*(create(n) for n in range(OPERATIONS))))
            assert len(operation_ids) == OPERATIONS
            executed_at_kill = await execution_count(pg_url)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and executed_at_kill < OPERATIONS // 3:
                await asyncio.sleep(0.05)
                executed_at_kill = await execution_count(pg_url)
            a.kill()
            assert executed_at_kill < OPERATIONS, "the run ended before the kill"
            ops = await wait_all_terminal(cb, operation_ids, seconds=180)
    finally:
        for replica in replicas:
            replica.stop()
    calls, executions = await counts(pg_url)

    states = Counter(o["state"] for o in ops)
    assert states == {"COMPLETED": OPERATIONS}, states
    per_key = Counter(row["key"] for row in executions)
    assert set(per_key) == {f"{op_id}:create" for op_id in operation_ids}
    assert set(per_key.values()) == {1}, [k for k, n in per_key.items() if n > 1]
    by_pid = Counter(row["pid"] for row in executions)
    assert len(by_pid) == 2, by_pid  # both replicas did work
    calls_per_op = Counter(row["operation_id"] for row in calls)
    taken_over = sorted(op for op, n in calls_per_op.items() if n > 1)
    # Only what the killed replica had leased (at most its worker count) was called again.
    assert len(taken_over) <= 6, taken_over
    print(
        f"\nR7: {OPERATIONS} operations on 2 replicas, replica A SIGKILLed after "
        f"{executed_at_kill} executions; {dict(states)}; executions per replica "
        f"{sorted(by_pid.values())}; {len(taken_over)} leased operations taken over; "
        f"executions per key: {sorted(set(per_key.values()))}"
    )

"""Issue 6: a real ``netweave serve`` on PostgreSQL is SIGKILLed while operations complete; after a
restart, every committed change's notification reaches a subscriber on 127.0.0.1 (de-duplicated
by event id), each once, in order per deployment.

A hook plugin sleeps in each ``DeploymentChanged`` broadcast, so the process spends most of its
time *after* commits, in the post-commit step: a kill there is where events recorded after
commit would have been lost (the operation's COMPLETED follows the deployment's DEPLOYED).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from notifications.notify_support import Subscriber, subscriber_server
from resilience_support import (
    AUTH,
    Replica,
    create_deployment,
    execution_count,
    install_slowfix,
    register_package,
    wait_all_terminal,
    write_config,
)

DEPLOYMENTS = 12


def notifying_config(path: Path, url: str) -> Path:
    config = write_config(path, store_url=url, dsn=url, before=0.3, after=0.2, lease=3.0, workers=6)
    with config.open("a") as out:
        out.write(
            "  hooks: [netweave_slowhooks]\n"
            "notifications: {allowedCidrs: ['127.0.0.0/8'], pollInterval: 0.05,"
            " settleSeconds: 0.05, backoffBase: 0.05, backoffMax: 0.2, timeout: 1.0,"
            " leaseSeconds: 2.0}\n"
        )
    return config


def story(bodies: list[dict[str, Any]], deployment_id: str) -> list[str]:
    out = []
    for body in bodies:
        if body.get("deploymentId") != deployment_id:
            continue
        detail = body.get("operationState") or body["data"].get("status")
        out.append(f"{body['notificationType']}:{detail}")
    return out


async def test_sigkill_after_commits_loses_no_notification(tmp_path: Path, pg_url: str) -> None:
    pythonpath = install_slowfix(tmp_path / "site")
    config = notifying_config(tmp_path / "gw.yaml", pg_url)
    subscriber = Subscriber()
    first = Replica(config, tmp_path / "data", pythonpath)
    second: Replica | None = None
    try:
        async with subscriber_server(subscriber) as callback:
            async with httpx.AsyncClient(base_url=first.url, headers=AUTH, timeout=20) as client:
                created = await client.post(
                    "/o2dms/v1/subscriptions", json={"callbackUri": f"{callback}/cb"}
                )
                assert created.status_code == 201, created.text
                await register_package(client)
                operation_ids = set()
                deployment_ids = set()
                for n in range(DEPLOYMENTS):
                    deployment_id, operation_id = await create_deployment(client, n)
                    deployment_ids.add(deployment_id)
                    operation_ids.add(operation_id)
            # Kill once some operations committed their completion (each then sits a second
            # in the slow DeploymentChanged hook) but not all did.
            for _ in range(600):  # up to 30 s
                if await execution_count(pg_url) >= 4:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            first.kill()
            heard_before_restart = len(subscriber.unique_accepted())

            second = Replica(config, tmp_path / "data", pythonpath)
            async with httpx.AsyncClient(base_url=second.url, headers=AUTH, timeout=20) as client:
                ops = await wait_all_terminal(client, operation_ids, seconds=90)
            final = {op["deploymentId"]: op["state"] for op in ops}
            expected_total = 1 + sum(6 if s == "COMPLETED" else 5 for s in final.values())
            for _ in range(600):  # up to 30 s
                if len(subscriber.unique_accepted()) >= expected_total:
                    break
                await asyncio.sleep(0.05)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    unique = subscriber.unique_accepted()
    assert {op["operationId"] for op in ops} == operation_ids
    assert set(final) == deployment_ids
    for deployment_id, state in final.items():
        want = [
            "DeploymentCreated:PENDING",
            "OperationStateChanged:STARTING",
            "OperationStateChanged:PROCESSING",
            "DeploymentChanged:DEPLOYING",
        ]
        if state == "COMPLETED":
            want += ["DeploymentChanged:DEPLOYED", "OperationStateChanged:COMPLETED"]
        else:
            want += ["DeploymentChanged:FAILED", f"OperationStateChanged:{state}"]
        assert story(unique, deployment_id) == want, deployment_id
    assert [b["notificationType"] for b in unique].count("PackageUploaded") == 1
    assert len(unique) == expected_total
    # Each change got one event id: no change was recorded twice under two ids.
    per_change = Counter(
        (
            b.get("deploymentId"),
            b["notificationType"],
            b.get("operationState"),
            b["data"].get("status"),
        )
        for b in unique
    )
    assert set(per_change.values()) == {1}, per_change
    redelivered = len(subscriber.accepted()) - len(unique)
    print(
        f"\nissue 6: {DEPLOYMENTS} deployments, {heard_before_restart} notifications heard before"
        f" the SIGKILL, {len(unique)} distinct after restart (expected {expected_total}),"
        f" {redelivered} re-deliveries de-duplicated; final states {dict(Counter(final.values()))}"
    )

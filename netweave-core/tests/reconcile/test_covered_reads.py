"""The reconciler drops the reads a watch asks for when an operation's recorded read already
saw those changes, and only those: a change reported after that read began is still read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from netweave.adapters import BackendChanges
from netweave.config import ReconcileSettings
from netweave.models import DeploymentStatus
from netweave.reconcile import Reconciler
from netweave.testing.polling import until
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter

BASE = "/o2dms/v1/nfDeployments"
#: Nothing read on a schedule during a test: only reported changes ask for reads.
QUIET = ReconcileSettings(interval=3600.0, resync=3600.0, lease_seconds=5.0, list_interval=0.2)


@asynccontextmanager
async def quiet_gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, MemoryAdapter, Reconciler]]:
    """A gateway on a memory adapter whose reconciler reads only what is reported (QUIET)."""
    settings = make_settings(tmp_path / "data")
    settings.reconcile = QUIET
    adapter = MemoryAdapter("mem")
    async with running_gateway(tmp_path, adapters=[adapter], settings=settings) as gw:
        reconciler = gw.app.state.services.reconciler
        assert reconciler is not None
        yield gw, adapter, reconciler


async def tracked_quietly(gw: Gateway, reconciler: Reconciler) -> tuple[str, str]:
    """A deployment, tracked by the reconciler, with no read of its own due during the test;
    its id and backend ref."""
    package = await gw.register_package("app", "1.0.0")
    deployment, operation = await gw.deploy(package["packageId"], values={"a": 1})
    assert operation["state"] == "COMPLETED", operation
    deployment_id = str(deployment["deploymentId"])
    await until(lambda: deployment_id in reconciler._tracked, every=0.02)
    tracked = reconciler._tracked[deployment_id]
    # Its first read is spread over the interval (an hour here): put it past the test.
    tracked.due = tracked.due_unchanged = time.monotonic() + 3600
    return deployment_id, tracked.backend_ref


async def upgrade_polled(
    gw: Gateway, adapter: MemoryAdapter, deployment_id: str, *, during_final_read: bool
) -> tuple[str, Any]:
    """Start an update whose outcome comes from the runner's second poll (the backend says
    DEPLOYING first); the watch reports a change while the first poll is held or, with
    ``during_final_read``, while the second (final) one is. The operation's id, and the gate
    now holding further backend reads (set it to let them answer)."""
    reconciler = gw.app.state.services.reconciler
    adapter.settle("update_deployment", [DeploymentStatus.DEPLOYING, DeploymentStatus.DEPLOYED])
    reads = len(adapter.calls_to("get_deployment"))
    held = adapter.hang("get_deployment")
    response = await gw.patch(f"{BASE}/{deployment_id}", json={"values": {"a": 2}})
    assert response.status_code == 202, response.text
    operation_id = gw.operation_id(response)
    await until(lambda: len(adapter.calls_to("get_deployment")) == reads + 1, every=0.02)
    if during_final_read:
        first, held = held, adapter.hang("get_deployment")  # a read keeps the gate it met
        first.set()
        await until(lambda: len(adapter.calls_to("get_deployment")) == reads + 2, every=0.02)
    ref = reconciler._tracked[deployment_id].backend_ref
    reconciler.changed(adapter.name, BackendChanges(refs=frozenset({ref})))
    # The held poll answers; any read after it is held until the caller says.
    answering, held = held, adapter.hang("get_deployment")
    answering.set()
    return operation_id, held


async def test_a_change_the_operations_final_read_saw_is_not_read_again(tmp_path: Path) -> None:
    async with quiet_gateway(tmp_path) as (gw, adapter, reconciler):
        deployment_id, _ref = await tracked_quietly(gw, reconciler)
        covered = reconciler.stats.covered
        reads = len(adapter.calls_to("get_deployment"))

        operation_id, held = await upgrade_polled(
            gw, adapter, deployment_id, during_final_read=False
        )
        held.set()
        done = await gw.wait_operation(operation_id)
        assert done["state"] == "COMPLETED", done
        assert len(adapter.calls_to("get_deployment")) == reads + 2  # the runner's two polls

        # The report came before the final read began: that read, recorded, covers it.
        await asyncio.sleep(1.5)  # past the change's settle (0.5 s): a read would be done
        assert len(adapter.calls_to("get_deployment")) == reads + 2
        assert reconciler.stats.observations == 0
        assert reconciler.stats.covered == covered + 1


async def test_a_change_reported_while_the_final_read_ran_is_read_and_recorded(
    tmp_path: Path,
) -> None:
    async with quiet_gateway(tmp_path) as (gw, adapter, reconciler):
        deployment_id, ref = await tracked_quietly(gw, reconciler)
        covered = reconciler.stats.covered

        operation_id, held = await upgrade_polled(
            gw, adapter, deployment_id, during_final_read=True
        )
        done = await gw.wait_operation(operation_id)
        assert done["state"] == "COMPLETED", done
        # Someone else changed it right after the final read (the watch cannot say whether
        # the change it reported came before or after that read began).
        adapter.releases[ref].status = DeploymentStatus.DEGRADED
        adapter.releases[ref].values = {"a": 3}
        held.set()

        deadline = time.monotonic() + 10
        while True:
            record = await gw.store.get_deployment(deployment_id)
            assert record is not None
            if record.status is DeploymentStatus.DEGRADED and record.drift is not None:
                break
            assert time.monotonic() < deadline, f"the change was never recorded: {record}"
            await asyncio.sleep(0.05)
        assert reconciler.stats.covered == covered
        assert record.drift["differences"][0]["change"] == "values"
        assert record.values == {"a": 2}  # what the operation deployed stays the desired state

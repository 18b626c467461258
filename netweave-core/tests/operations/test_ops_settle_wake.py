"""A watch report of a deployment an operation is settling reads it at once (the runner's
timed polls stay the fallback): the reconciler, which receives the reports, wakes the runner
through ``netweave.operations.wakeups``."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import pytest
from netweave.adapters import BackendChanges
from netweave.config import ReconcileSettings
from netweave.models import DeploymentStatus
from netweave.operations import runner
from netweave.operations.wakeups import Wakeups, wakeups_of
from netweave.testing.polling import until
from support.gateway import Gateway, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter, Release

BASE = "/o2dms/v1/nfDeployments"
#: The reconciler reads nothing on a schedule during a test (its reads are not the runner's).
QUIET = ReconcileSettings(interval=3600.0, resync=3600.0, lease_seconds=5.0, list_interval=0.2)
#: The runner's timed polls in the tests that must not pass by timer: far past their bounds.
LONG_POLL = 30.0


class WatchedAdapter(MemoryAdapter):
    """A memory adapter whose watch reports what the test puts in ``reports``."""

    WATCHES: ClassVar[bool] = True

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.reports: asyncio.Queue[BackendChanges] = asyncio.Queue()

    async def watch_deployments(self) -> AsyncIterator[BackendChanges]:
        while True:
            yield await self.reports.get()


class RollingAdapter(WatchedAdapter):
    """Every create stays DEPLOYING until the test says (``settle`` scripts one create)."""

    def _scripted(self, hook: str, release: Release) -> None:
        super()._scripted(hook, release)
        if hook == "create_deployment":
            release.status = DeploymentStatus.DEPLOYING


@asynccontextmanager
async def gateway_on(tmp_path: Path, adapter: MemoryAdapter) -> AsyncIterator[Gateway]:
    settings = make_settings(tmp_path / "data")
    settings.reconcile = QUIET
    async with running_gateway(tmp_path, adapters=[adapter], settings=settings) as gw:
        yield gw


def long_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("netweave.operations.runner._FIRST_POLL", LONG_POLL)
    monkeypatch.setattr("netweave.operations.runner._MAX_POLL", LONG_POLL)


async def create_settling(gw: Gateway, adapter: MemoryAdapter) -> tuple[str, str]:
    """A create whose release stays DEPLOYING until the test says: its operation's id and the
    release's ref, once the runner is settling it (between polls)."""
    package = await gw.register_package("app", "1.0.0")
    adapter.settle("create_deployment", [DeploymentStatus.DEPLOYING])
    response = await gw.post(BASE, json={"name": "web", "packageId": package["packageId"]})
    assert response.status_code == 201, response.text
    operation_id = gw.operation_id(response)
    await until(lambda: adapter.releases, every=0.01)
    (ref,) = adapter.releases
    wakeups = wakeups_of(gw.app.state.services.hooks)
    await until(lambda: (adapter.name, ref) in wakeups._waiting, every=0.01)
    return operation_id, ref


async def test_a_reported_readiness_completes_the_operation_before_its_timed_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_timer(monkeypatch)
    adapter = WatchedAdapter("watched")
    async with gateway_on(tmp_path, adapter) as gw:
        operation_id, ref = await create_settling(gw, adapter)
        reads = len(adapter.calls_to("get_deployment"))
        await asyncio.sleep(0.2)
        assert len(adapter.calls_to("get_deployment")) == reads  # the timer is far off

        adapter.releases[ref].status = DeploymentStatus.DEPLOYED  # became ready
        reported = time.monotonic()
        adapter.reports.put_nowait(BackendChanges(refs=frozenset({ref})))
        done = await gw.wait_operation(operation_id, wait_seconds=5.0)
        assert done["state"] == "COMPLETED", done
        assert time.monotonic() - reported < 5.0 < LONG_POLL
        assert len(adapter.calls_to("get_deployment")) == reads + 1  # the one the report asked


async def test_reports_during_a_read_cost_one_read_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_timer(monkeypatch)
    adapter = WatchedAdapter("watched")
    async with gateway_on(tmp_path, adapter) as gw:
        operation_id, ref = await create_settling(gw, adapter)
        reads = len(adapter.calls_to("get_deployment"))
        held = adapter.hang("get_deployment")
        adapter.reports.put_nowait(BackendChanges(refs=frozenset({ref})))
        await until(lambda: len(adapter.calls_to("get_deployment")) == reads + 1, every=0.01)
        # A burst while that read is held: each may postdate it, so one more read, not five.
        for _ in range(5):
            adapter.reports.put_nowait(BackendChanges(refs=frozenset({ref})))
            await asyncio.sleep(0.01)
        held.set()
        await until(
            lambda: len(adapter.calls_to("get_deployment")) == reads + 2, within=5.0, every=0.01
        )
        await asyncio.sleep(0.5)  # anything more would be read by now
        assert len(adapter.calls_to("get_deployment")) == reads + 2
        operation = (await gw.get(f"/o2dms/v1/operations/{operation_id}")).json()
        assert operation["state"] == "PROCESSING", operation  # still DEPLOYING: still settling


async def test_a_burst_of_reports_soon_after_a_read_costs_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_timer(monkeypatch)
    # Long enough that the burst surely falls within it after the adapter call's read.
    monkeypatch.setattr("netweave.operations.runner._REPORT_GAP", 0.5)
    adapter = WatchedAdapter("watched")
    async with gateway_on(tmp_path, adapter) as gw:
        operation_id, ref = await create_settling(gw, adapter)
        reads = len(adapter.calls_to("get_deployment"))
        for _ in range(5):
            adapter.reports.put_nowait(BackendChanges(refs=frozenset({ref})))
            await asyncio.sleep(0.01)
        await until(
            lambda: len(adapter.calls_to("get_deployment")) == reads + 1, within=5.0, every=0.01
        )
        await asyncio.sleep(1.0)  # past the gap again: a second read would be done
        assert len(adapter.calls_to("get_deployment")) == reads + 1
        operation = (await gw.get(f"/o2dms/v1/operations/{operation_id}")).json()
        assert operation["state"] == "PROCESSING", operation


async def test_a_report_between_the_adapters_read_and_the_settle_is_not_lost() -> None:
    wakeups = Wakeups()
    read_at = time.monotonic()
    wakeups.reported("a", "ns/web", time.monotonic())  # after that read began
    wakeups.reported("a", "ns/other", time.monotonic())
    with wakeups.waiting("a", "ns/web", read_at) as event:
        assert event.is_set()
    with wakeups.waiting("a", "ns/web", time.monotonic()) as event:
        assert not event.is_set()  # a later read saw it
        wakeups.reported("a", "ns/other", time.monotonic())
        assert not event.is_set()
        wakeups.resynced("a", time.monotonic())
        assert event.is_set()  # a relisted watch: anything may have changed
    assert not wakeups._waiting


@pytest.mark.parametrize("watched", [False, True], ids=["not watched", "report lost"])
async def test_without_a_report_the_operation_settles_by_its_timer(
    tmp_path: Path, watched: bool
) -> None:
    adapter = WatchedAdapter("watched") if watched else MemoryAdapter("polled")
    async with gateway_on(tmp_path, adapter) as gw:
        package = await gw.register_package("app", "1.0.0")
        adapter.settle(
            "create_deployment",
            [DeploymentStatus.DEPLOYING, DeploymentStatus.DEPLOYING, DeploymentStatus.DEPLOYED],
        )
        _deployment, operation = await gw.deploy(package["packageId"])
        assert operation["state"] == "COMPLETED", operation
        # The timer's polls (each read moves the release on) until one says DEPLOYED.
        assert len(adapter.calls_to("get_deployment")) == 3


async def test_many_settles_space_their_report_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many settles of one adapter (P4: 200 creates) read a reported change less often than a
    few: rounds of reports 60 ms apart (past the 50 ms gap of a lone settle) cost each of 24
    settles about one read per round with a fixed gap, a few with the spaced one."""
    long_timer(monkeypatch)
    count, rounds = 24, 10
    adapter = RollingAdapter("watched")
    async with gateway_on(tmp_path, adapter) as gw:  # 32 operations run at once (default)
        package = await gw.register_package("app", "1.0.0")
        operations = []
        for index in range(count):
            body = {"name": f"web-{index}", "packageId": package["packageId"]}
            response = await gw.post(BASE, json=body)
            assert response.status_code == 201, response.text
            operations.append(gw.operation_id(response))
        wakeups = wakeups_of(gw.app.state.services.hooks)
        await until(lambda: wakeups.settling(adapter.name) == count, every=0.01)
        refs = frozenset(adapter.releases)
        reads = len(adapter.calls_to("get_deployment"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(rounds):
            adapter.reports.put_nowait(BackendChanges(refs=refs))
            await asyncio.sleep(0.06)
        elapsed = loop.time() - started
        await asyncio.sleep(1.0)  # past the longest gap: the reads the reports asked are done
        spent = len(adapter.calls_to("get_deployment")) - reads
        # A fixed 50 ms gap: one read per round, ~count * rounds (240). Spaced (0.3 s for 24):
        # each settle reads on the first report, then at most once a gap while the rounds last
        # and once after: the bound follows the time the rounds took (a loaded machine
        # stretches them), ~5 per settle when they take 0.6 s.
        most = count * (2 + math.ceil(elapsed / runner._report_gap(count)))
        assert most <= count * rounds * 3 // 4, f"the rounds took {elapsed:.2f} s: too slow"
        assert count <= spent <= most, (spent, most)

        for release in adapter.releases.values():
            release.status = DeploymentStatus.DEPLOYED
        adapter.reports.put_nowait(BackendChanges(refs=refs))
        for operation_id in operations:
            done = await gw.wait_operation(operation_id, wait_seconds=10.0)
            assert done["state"] == "COMPLETED", done
        assert wakeups.settling(adapter.name) == 0


def test_a_few_settles_keep_the_short_gap() -> None:
    assert runner._report_gap(1) == runner._REPORT_GAP
    assert runner._report_gap(runner._FEW_SETTLES) == runner._REPORT_GAP
    assert runner._REPORT_GAP < runner._report_gap(2 * runner._FEW_SETTLES) < 1.0
    assert runner._report_gap(10_000) == runner._MAX_REPORT_GAP


async def test_a_lone_settle_reads_a_report_after_the_short_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settles that ended are not counted: a create after others still reads at once."""
    long_timer(monkeypatch)
    monkeypatch.setattr("netweave.operations.runner._MAX_REPORT_GAP", LONG_POLL)
    monkeypatch.setattr("netweave.operations.runner._FEW_SETTLES", 1)
    adapter = WatchedAdapter("watched")
    async with gateway_on(tmp_path, adapter) as gw:
        package = await gw.register_package("app", "1.0.0")
        for index in range(3):  # settled at once (no script): over before the next
            _deployment, operation = await gw.deploy(package["packageId"], name=f"old-{index}")
            assert operation["state"] == "COMPLETED", operation
        old = set(adapter.releases)
        adapter.settle("create_deployment", [DeploymentStatus.DEPLOYING])
        response = await gw.post(BASE, json={"name": "web", "packageId": package["packageId"]})
        assert response.status_code == 201, response.text
        operation_id = gw.operation_id(response)
        wakeups = wakeups_of(gw.app.state.services.hooks)
        await until(lambda: wakeups.settling(adapter.name) == 1, every=0.01)
        (ref,) = set(adapter.releases) - old
        adapter.releases[ref].status = DeploymentStatus.DEPLOYED
        adapter.reports.put_nowait(BackendChanges(refs=frozenset({ref})))
        done = await gw.wait_operation(operation_id, wait_seconds=5.0)
        assert done["state"] == "COMPLETED", done

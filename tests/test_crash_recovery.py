"""``kill -9`` of ``netweave serve`` while Helm installs run, then recovery: a restart on the
same data directory (SQLite), or the other replica taking the operations over (PostgreSQL).
Every operation ends truthfully, nothing stays pending or DEPLOYING, nothing is installed
twice, and every deployment can be changed afterwards. Checked against Helm's own release
storage and the objects in the (emulated) cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import stop_gateway
from crashround import (
    NAMESPACE,
    RoundResult,
    crash_round,
    crash_upgrades,
    helm_releases,
    upgrade_all,
)
from netweave.testing.postgres import temporary_database


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A throw-away database on the real PostgreSQL (its URL), dropped afterwards."""
    with temporary_database("crash") as url:
        assert url is not None
        yield url


def assert_truthful(result: RoundResult, emulator: Any) -> None:
    assert result.killed_with_pending > 0, "the kill did not catch an install mid-way"
    assert not result.problems, "\n".join(result.problems)
    assert result.stuck == 0, result.summary()
    assert result.installed_twice == 0, result.summary()
    # Helm holds exactly one release per deployment, none pending; each has its objects.
    names = {record["name"] for record in result.deployments.values()}
    assert set(result.releases) == names, result.summary()
    for record in result.deployments.values():
        release = result.releases[record["name"]]
        assert release.status == "deployed", (record["name"], release.revisions)
        obj = emulator.get("apps/v1", "Deployment", f"{record['name']}-hello-world", NAMESPACE)
        assert obj is not None, record["name"]
    assert result.deployed == result.created, result.summary()


def assert_upgrades_work(gateway: Any, result: RoundResult, emulator: Any) -> None:
    states = upgrade_all(gateway, list(result.deployments), 2)
    assert set(states.values()) == {"COMPLETED"}, states
    for record in result.deployments.values():
        obj = emulator.get("apps/v1", "Deployment", f"{record['name']}-hello-world", NAMESPACE)
        assert obj is not None and obj["spec"]["replicas"] == 2, record["name"]


def test_sigkill_mid_install_then_restart_on_sqlite(
    k8s_emulator_factory: Callable[..., Any], tmp_path: Path, gateway_home: Path, chart_path: Path
) -> None:
    emulator = k8s_emulator_factory()
    result, gateway = crash_round(emulator, tmp_path, gateway_home, chart_path, creates=20)
    try:
        print(result.summary())
        assert_truthful(result, emulator)
        assert_upgrades_work(gateway, result, emulator)
    finally:
        stop_gateway(gateway)


def test_sigkill_mid_upgrade_then_restart_on_sqlite(
    k8s_emulator_factory: Callable[..., Any], tmp_path: Path, gateway_home: Path, chart_path: Path
) -> None:
    """Upgrades interrupted mid-way: each resumed upgrade finds its own release
    pending-upgrade, rolls it back with Helm and upgrades again."""
    emulator = k8s_emulator_factory()
    result, gateway = crash_round(emulator, tmp_path, gateway_home, chart_path, creates=12)
    try:
        assert_truthful(result, emulator)
        states, pending, gateway = crash_upgrades(
            emulator, gateway, gateway_home, list(result.deployments), 3
        )
        assert pending > 0, "the kill did not catch an upgrade mid-way"
        assert set(states.values()) == {"COMPLETED"}, states
        releases = helm_releases(emulator)
        with gateway.client() as client:
            for deployment_id, record in result.deployments.items():
                name = record["name"]
                assert releases[name].status == "deployed", releases[name].revisions
                obj = emulator.get("apps/v1", "Deployment", f"{name}-hello-world", NAMESPACE)
                assert obj is not None and obj["spec"]["replicas"] == 3, name
                now = client.get(f"/o2dms/v1/nfDeployments/{deployment_id}").json()
                assert now["status"] == "DEPLOYED" and now["values"]["replicaCount"] == 3, now
                assert now["revision"] == max(releases[name].revisions)[0], now
    finally:
        stop_gateway(gateway)


def test_sigkill_one_of_two_replicas_on_postgresql(
    k8s_emulator_factory: Callable[..., Any],
    tmp_path: Path,
    gateway_home: Path,
    chart_path: Path,
    pg_database: str,
) -> None:
    emulator = k8s_emulator_factory()
    result, survivor = crash_round(
        emulator,
        tmp_path,
        gateway_home,
        chart_path,
        creates=30,
        replicas=2,
        store_url=pg_database,
    )
    try:
        print(result.summary())
        assert_truthful(result, emulator)
        assert_upgrades_work(survivor, result, emulator)
    finally:
        stop_gateway(survivor)

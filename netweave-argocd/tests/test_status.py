"""The status table: total over Argo CD's vocabularies, and never DEPLOYED unless it is."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from netweave.models import DeploymentStatus as S
from netweave_argocd.status import HEALTH_STATUSES, SYNC_STATUSES, TABLE, map_status


def app(
    sync: str = "",
    health: str = "",
    phase: str = "",
    *,
    automated: bool = False,
    deleting: bool = False,
    operation: dict[str, Any] | None = None,
    running_op: dict[str, Any] | None = None,
    conditions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if sync:
        status["sync"] = {"status": sync}
    if health:
        status["health"] = {"status": health}
    if phase:
        status["operationState"] = {"phase": phase, "operation": running_op or {"sync": {}}}
    if conditions:
        status["conditions"] = conditions
    result: dict[str, Any] = {
        "metadata": {"name": "web"},
        "spec": {"syncPolicy": {"automated": {"enabled": True}}} if automated else {},
        "status": status,
    }
    if deleting:
        result["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if operation:
        result["operation"] = operation
    return result


def test_table_covers_every_pair_of_the_vocabularies() -> None:
    assert set(TABLE) == set(itertools.product(SYNC_STATUSES, HEALTH_STATUSES))


@pytest.mark.parametrize(("sync", "health"), sorted(TABLE))
@pytest.mark.parametrize("automated", [False, True])
def test_only_synced_and_healthy_is_deployed(sync: str, health: str, automated: bool) -> None:
    status = map_status(app(sync, health, "Succeeded", automated=automated)).status
    assert (status is S.DEPLOYED) == (sync == "Synced" and health == "Healthy")


@pytest.mark.parametrize(
    ("sync", "health", "automated", "expected"),
    [
        ("Synced", "Healthy", False, S.DEPLOYED),
        ("Synced", "Progressing", False, S.DEPLOYING),
        ("Synced", "Degraded", False, S.DEGRADED),
        ("OutOfSync", "Degraded", True, S.DEGRADED),
        ("Synced", "Suspended", False, S.SUSPENDED),
        ("OutOfSync", "Healthy", True, S.DEPLOYING),
        ("OutOfSync", "Healthy", False, S.PENDING),
        ("OutOfSync", "Missing", True, S.DEPLOYING),
        ("OutOfSync", "Missing", False, S.PENDING),
        ("Unknown", "Healthy", False, S.UNKNOWN),
        ("Synced", "Unknown", False, S.UNKNOWN),
        ("", "", False, S.PENDING),
    ],
)
def test_table_rows(sync: str, health: str, automated: bool, expected: S) -> None:
    assert map_status(app(sync, health, automated=automated)).status is expected


def test_precedence_deleting_then_operations_then_failures() -> None:
    assert map_status(app("Synced", "Healthy", "Running", deleting=True)).status is S.DELETING
    assert map_status(app("Synced", "Healthy", "Running")).status is S.DEPLOYING
    assert map_status(app("Synced", "Healthy", "Terminating")).status is S.DEPLOYING
    assert map_status(app("Synced", "Healthy", operation={"sync": {}})).status is S.DEPLOYING
    failed = map_status(app("Synced", "Healthy", "Failed"))
    assert failed.status is S.FAILED
    assert map_status(app("Synced", "Healthy", "Error")).status is S.FAILED
    condition = [{"type": "ComparisonError", "message": "repo unreachable"}]
    mapped = map_status(app("Synced", "Healthy", "Succeeded", conditions=condition))
    assert (mapped.status, mapped.message) == (S.FAILED, "ComparisonError: repo unreachable")
    warning = [{"type": "OrphanedResourceWarning", "message": "x"}]
    assert map_status(app("Synced", "Healthy", conditions=warning)).status is S.DEPLOYED


def test_rollback_operations_are_rolling_back() -> None:
    rollback = {"sync": {"revision": "1.0.0", "source": {"repoURL": "r"}}}
    assert map_status(app("Synced", "Healthy", operation=rollback)).status is S.ROLLING_BACK
    running = map_status(app("OutOfSync", "Progressing", "Running", running_op=rollback))
    assert running.status is S.ROLLING_BACK
    multi = {"sync": {"sources": [{"repoURL": "r"}]}}
    assert map_status(app("Synced", "Healthy", "Running", running_op=multi)).status is (
        S.ROLLING_BACK
    )


@pytest.mark.parametrize(
    ("sync", "health", "phase"),
    [("Synced", "Healthy", "Paused"), ("Sinking", "Healthy", ""), ("Synced", "Great", "")],
)
def test_unknown_vocabulary_is_unknown_never_deployed(sync: str, health: str, phase: str) -> None:
    mapped = map_status(app(sync, health, phase))
    assert mapped.status is S.UNKNOWN
    assert mapped.message is not None


def test_backend_status_reports_argos_words() -> None:
    mapped = map_status(app("Synced", "Degraded", "Succeeded"))
    assert mapped.backend_status == "sync=Synced health=Degraded phase=Succeeded"

"""The status table: total over Argo CD's vocabularies, and never DEPLOYED unless it is."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from netweave.models import DeploymentStatus as S
from netweave_argocd.status import HEALTH_STATUSES, SYNC_STATUSES, TABLE, map_status

SOURCE = {
    "repoURL": "https://charts.example.test/stable",
    "chart": "web",
    "targetRevision": "1.0.0",
}


def app(
    sync: str = "",
    health: str = "",
    phase: str = "",
    *,
    automated: bool | dict[str, Any] = False,
    synced: bool = False,
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
    spec: dict[str, Any] = {"source": dict(SOURCE)}
    if automated:
        policy = automated if isinstance(automated, dict) else {"enabled": True}
        spec["syncPolicy"] = {"automated": policy}
    if synced:
        # Its last sync went to the target it is compared with now (revision and source).
        status.setdefault("sync", {})["revision"] = "1.0.0"
        status["history"] = [{"id": 0, "revision": "1.0.0", "deployedAt": "2026-01-01T00:00:00Z"}]
        status["operationState"] = {
            "phase": phase or "Succeeded",
            "operation": running_op or {"sync": {}},
            "syncResult": {"revision": "1.0.0", "source": dict(SOURCE)},
        }
    result: dict[str, Any] = {"metadata": {"name": "web"}, "spec": spec, "status": status}
    if deleting:
        result["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if operation:
        result["operation"] = operation
    return result


def test_table_covers_every_pair_of_the_vocabularies() -> None:
    assert set(TABLE) == set(itertools.product(SYNC_STATUSES, HEALTH_STATUSES))


@pytest.mark.parametrize(("sync", "health"), sorted(TABLE))
@pytest.mark.parametrize("automated", [False, True])
@pytest.mark.parametrize("synced", [False, True])
def test_deployed_only_when_healthy_and_synced_or_drifted_with_nothing_syncing(
    sync: str, health: str, automated: bool, synced: bool
) -> None:
    # ``synced``: the last sync went to the current target, so auto-sync (no selfHeal) does not
    # sync again: an OutOfSync app then runs what that sync applied, plus drift.
    status = map_status(app(sync, health, "Succeeded", automated=automated, synced=synced)).status
    drifted = sync == "OutOfSync" and synced
    assert (status is S.DEPLOYED) == (health == "Healthy" and (sync == "Synced" or drifted))


@pytest.mark.parametrize(
    ("sync", "health", "automated", "expected"),
    [
        ("Synced", "Healthy", False, S.DEPLOYED),
        ("Synced", "Progressing", False, S.DEPLOYING),
        ("Synced", "Degraded", False, S.DEGRADED),
        ("OutOfSync", "Degraded", True, S.DEGRADED),
        ("Synced", "Suspended", False, S.SUSPENDED),
        # Never synced: auto-sync's first sync comes; a manual app waits for one.
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


@pytest.mark.parametrize(
    ("health", "expected"),
    [("Healthy", S.DEPLOYED), ("Missing", S.DEGRADED), ("", S.UNKNOWN)],
)
def test_a_manual_app_out_of_sync_after_a_sync_is_drift_judged_by_its_health(
    health: str, expected: S
) -> None:
    mapped = map_status(app("OutOfSync", health, synced=True))
    assert mapped.status is expected, mapped
    assert mapped.message


def test_auto_sync_is_in_progress_only_when_argo_cd_will_sync() -> None:
    # The last sync went to this target: without selfHeal Argo CD leaves the drift.
    assert map_status(app("OutOfSync", "Healthy", automated=True, synced=True)).status is (
        S.DEPLOYED
    )
    healing = {"enabled": True, "selfHeal": True}
    assert map_status(app("OutOfSync", "Healthy", automated=healing, synced=True)).status is (
        S.DEPLOYING
    )
    # A new target (the gateway's update: values or another chart version) is synced by it.
    changed = app("OutOfSync", "Healthy", automated=True, synced=True)
    changed["spec"]["source"]["helm"] = {"valuesObject": {"replicaCount": 3}}
    assert map_status(changed).status is S.DEPLOYING
    moved = app("OutOfSync", "Healthy", automated=True, synced=True)
    moved["status"]["sync"]["revision"] = "1.1.0"
    assert map_status(moved).status is S.DEPLOYING
    # ``HEAD`` and the branch it names resolve to the same commit: not a new target.
    renamed = app("OutOfSync", "Healthy", automated=True, synced=True)
    renamed["status"]["operationState"]["syncResult"]["source"]["targetRevision"] = "HEAD"
    renamed["spec"]["source"]["targetRevision"] = "main"
    assert map_status(renamed).status is S.DEPLOYED
    # Switched off explicitly: a manual app.
    off = app("OutOfSync", "Healthy", automated={"enabled": False, "selfHeal": True}, synced=True)
    assert map_status(off).status is S.DEPLOYED


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

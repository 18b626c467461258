"""Helm's nine release statuses in the gateway's vocabulary."""

from __future__ import annotations

import pytest
from netweave.models import DeploymentStatus
from netweave_helm.status import HELM_STATUSES, deployment_status, history_status

#: pkg/release/common/status.go (Helm v4.2.4), all nine.
HELM_NINE = (
    "unknown",
    "deployed",
    "uninstalled",
    "superseded",
    "failed",
    "uninstalling",
    "pending-install",
    "pending-upgrade",
    "pending-rollback",
)


def test_table_is_total_over_helms_statuses() -> None:
    assert set(HELM_STATUSES) == set(HELM_NINE)


@pytest.mark.parametrize(
    ("helm", "expected"),
    [
        ("deployed", DeploymentStatus.DEPLOYED),
        ("failed", DeploymentStatus.FAILED),
        ("pending-install", DeploymentStatus.DEPLOYING),
        ("pending-upgrade", DeploymentStatus.DEPLOYING),
        ("pending-rollback", DeploymentStatus.ROLLING_BACK),
        ("uninstalling", DeploymentStatus.DELETING),
        ("uninstalled", DeploymentStatus.DELETED),
        ("unknown", DeploymentStatus.UNKNOWN),
        ("superseded", DeploymentStatus.DEPLOYED),
        ("Deployed", DeploymentStatus.DEPLOYED),
    ],
)
def test_mapping(helm: str, expected: DeploymentStatus) -> None:
    assert deployment_status(helm) is expected


@pytest.mark.parametrize("odd", ["", "paused", "pending-something", None])
def test_unrecognised_status_falls_back_to_unknown_never_deployed(odd: str | None) -> None:
    assert deployment_status(odd) is DeploymentStatus.UNKNOWN


def test_history_says_superseded_not_failed() -> None:
    assert history_status("superseded") == "SUPERSEDED"
    assert history_status("failed") == "FAILED"
    assert history_status("deployed") == "DEPLOYED"
    assert history_status("mystery") == "UNKNOWN"

"""The explicit OSM → gateway status tables (backends.md §3.6)."""

from __future__ import annotations

import pytest
from netweave.models import DeploymentStatus as S
from netweave_osm.status import deployment_status, ns_status, op_status

OP_TABLE = [
    ("instantiate", "PROCESSING", S.DEPLOYING),
    ("instantiate", "COMPLETED", S.DEPLOYED),
    ("instantiate", "PARTIALLY_COMPLETED", S.DEPLOYED),
    ("instantiate", "FAILED_TEMP", S.FAILED),
    ("instantiate", "FAILED", S.FAILED),
    ("instantiate", "ROLLING_BACK", S.ROLLING_BACK),
    ("instantiate", "ROLLED_BACK", S.FAILED),
    ("action", "PROCESSING", S.DEPLOYING),
    ("scale", "COMPLETED", S.DEPLOYED),
    ("terminate", "PROCESSING", S.DELETING),
    ("terminate", "COMPLETED", S.DELETED),
    ("terminate", "PARTIALLY_COMPLETED", S.DELETED),
    ("terminate", "FAILED", S.FAILED),
    ("terminate", "FAILED_TEMP", S.FAILED),
    ("terminate", "ROLLING_BACK", S.ROLLING_BACK),
    ("terminate", "ROLLED_BACK", S.FAILED),
    ("instantiate", "CANCELLED_BY_SOMEONE", S.UNKNOWN),
    ("terminate", None, S.UNKNOWN),
]


@pytest.mark.parametrize(("op_type", "state", "expected"), OP_TABLE)
def test_operation_state_table(op_type: str, state: str | None, expected: S) -> None:
    assert op_status(op_type, state) is expected


@pytest.mark.parametrize(
    ("ns_state", "expected"),
    [
        ("NOT_INSTANTIATED", S.PENDING),
        ("BUILDING", S.DEPLOYING),
        ("READY", S.DEPLOYED),
        ("DEGRADED", S.DEGRADED),
        ("BROKEN", S.FAILED),
        ("TERMINATING", S.DELETING),
        ("READ", S.UNKNOWN),  # a typo seen in real OSM data: never DEPLOYED
        (None, S.UNKNOWN),
    ],
)
def test_ns_state_table(ns_state: str | None, expected: S) -> None:
    assert ns_status(ns_state) is expected


def test_latest_operation_decides_and_ns_state_refines() -> None:
    done = {"lcmOperationType": "action", "operationState": "COMPLETED"}
    assert deployment_status("READY", done) is S.DEPLOYED
    assert deployment_status("DEGRADED", done) is S.DEGRADED
    assert deployment_status("BROKEN", done) is S.FAILED
    assert deployment_status("READ", done) is S.UNKNOWN
    assert deployment_status("NOT_INSTANTIATED", None) is S.PENDING


def test_running_rollback_primitive_is_rolling_back() -> None:
    op = {
        "lcmOperationType": "action",
        "operationState": "PROCESSING",
        "operationParams": {"primitive": "rollback", "kdu_name": "ldap"},
    }
    assert deployment_status("READY", op) is S.ROLLING_BACK
    op["operationParams"] = {"primitive": "upgrade", "kdu_name": "ldap"}
    assert deployment_status("READY", op) is S.DEPLOYING

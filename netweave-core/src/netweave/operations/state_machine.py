"""ETSI operation-occurrence rules (SOL003 LCM op occ), in one place.

Lifecycle run by the worker::

    STARTING ──► PROCESSING ──► COMPLETED   (only when the backend confirms the end state)
                     │
                     └────────► FAILED_TEMP ──retry────► PROCESSING
                                    │  │
                                    │  └──rollback──► ROLLING_BACK ──► ROLLED_BACK
                                    │                      │
                                    │                      └─(rollback failed)─► FAILED_TEMP
                                    └──fail──► FAILED

Client tasks and the states they are allowed from (409 ``Conflict`` otherwise):

* ``retry``    — only from FAILED_TEMP (back to PROCESSING, the worker picks it up again);
* ``fail``     — only from FAILED_TEMP (final: FAILED);
* ``rollback`` — only from FAILED_TEMP, and not for a DELETE (→ ROLLING_BACK: the worker restores
  what the deployment was before the operation);
* ``cancel``   — only from STARTING or PROCESSING (→ FAILED_TEMP, so it can then be retried,
  rolled back or failed, as ETSI's cancel does).

Every failure of a running operation lands in FAILED_TEMP, never straight in FAILED: the client
decides whether to retry or give up, which is what ETSI's FAILED_TEMP is for. Until it does, the
operation still counts as the deployment's active one: another change (or a delete) is a 409
naming it, as ETSI blocks further LCM operations on an instance with an unresolved FAILED_TEMP.
"""

from __future__ import annotations

from netweave.errors import Conflict
from netweave.models import OperationState

#: The worker's own transitions.
TRANSITIONS: dict[OperationState, frozenset[OperationState]] = {
    OperationState.STARTING: frozenset(
        {OperationState.PROCESSING, OperationState.FAILED_TEMP, OperationState.COMPLETED}
    ),
    OperationState.PROCESSING: frozenset(
        {OperationState.COMPLETED, OperationState.FAILED_TEMP, OperationState.FAILED}
    ),
    OperationState.FAILED_TEMP: frozenset({OperationState.PROCESSING, OperationState.FAILED}),
    OperationState.COMPLETED: frozenset(),
    OperationState.FAILED: frozenset(),
    OperationState.ROLLING_BACK: frozenset(
        {OperationState.ROLLED_BACK, OperationState.FAILED_TEMP}
    ),
    OperationState.ROLLED_BACK: frozenset(),
}

#: States an operation is "active" in: at most one per deployment.
ACTIVE_STATES = frozenset(
    {OperationState.STARTING, OperationState.PROCESSING, OperationState.ROLLING_BACK}
)

RETRY_FROM = frozenset({OperationState.FAILED_TEMP})
FAIL_FROM = frozenset({OperationState.FAILED_TEMP})
ROLLBACK_FROM = frozenset({OperationState.FAILED_TEMP})
CANCEL_FROM = frozenset({OperationState.STARTING, OperationState.PROCESSING})


def can_transition(current: OperationState, target: OperationState) -> bool:
    return target in TRANSITIONS[current]


def _refuse(task: str, operation_id: str, state: OperationState, allowed: frozenset[str]) -> None:
    raise Conflict(
        f"operation {operation_id} is {state.value}; {task} is only allowed from "
        f"{', '.join(sorted(allowed))}",
        details={"operationId": operation_id, "state": state.value, "task": task},
    )


def check_retry(operation_id: str, state: OperationState) -> None:
    if state not in RETRY_FROM:
        _refuse("retry", operation_id, state, RETRY_FROM)


def check_fail(operation_id: str, state: OperationState) -> None:
    if state not in FAIL_FROM:
        _refuse("fail", operation_id, state, FAIL_FROM)


def check_rollback(operation_id: str, state: OperationState) -> None:
    if state not in ROLLBACK_FROM:
        _refuse("rollback", operation_id, state, ROLLBACK_FROM)


def check_cancel(operation_id: str, state: OperationState) -> None:
    if state not in CANCEL_FROM:
        _refuse("cancel", operation_id, state, CANCEL_FROM)

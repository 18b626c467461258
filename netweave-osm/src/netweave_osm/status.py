"""OSM's state vocabularies mapped onto the gateway's ``DeploymentStatus`` (backends.md §3.6).

Every table is total over the values OSM documents; anything else maps to ``UNKNOWN`` (never
to ``DEPLOYED``), because OSM has been seen storing odd values (``"nsState": "READ"``).
"""

from __future__ import annotations

from netweave.models import DeploymentStatus

#: ``nslcmop.operationState`` values (NBI/LCM).
OP_PROCESSING = "PROCESSING"
OP_COMPLETED = "COMPLETED"
OP_PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
OP_FAILED_TEMP = "FAILED_TEMP"
OP_FAILED = "FAILED"
OP_ROLLING_BACK = "ROLLING_BACK"
OP_ROLLED_BACK = "ROLLED_BACK"

#: States after which an operation occurrence never changes again.
TERMINAL_OP_STATES = frozenset(
    {OP_COMPLETED, OP_PARTIALLY_COMPLETED, OP_FAILED_TEMP, OP_FAILED, OP_ROLLED_BACK}
)
#: Terminal states osmclient counts as success.
SUCCESS_OP_STATES = frozenset({OP_COMPLETED, OP_PARTIALLY_COMPLETED})

#: Latest operation of any type except terminate.
_OP_STATUS: dict[str, DeploymentStatus] = {
    OP_PROCESSING: DeploymentStatus.DEPLOYING,
    OP_COMPLETED: DeploymentStatus.DEPLOYED,
    OP_PARTIALLY_COMPLETED: DeploymentStatus.DEPLOYED,
    OP_FAILED_TEMP: DeploymentStatus.FAILED,
    OP_FAILED: DeploymentStatus.FAILED,
    OP_ROLLING_BACK: DeploymentStatus.ROLLING_BACK,
    # OSM rolled the failed operation back: the NS did not reach what was asked.
    OP_ROLLED_BACK: DeploymentStatus.FAILED,
}

#: Latest operation is a ``terminate``.
_TERMINATE_STATUS: dict[str, DeploymentStatus] = {
    OP_PROCESSING: DeploymentStatus.DELETING,
    OP_COMPLETED: DeploymentStatus.DELETED,
    OP_PARTIALLY_COMPLETED: DeploymentStatus.DELETED,
    OP_FAILED_TEMP: DeploymentStatus.FAILED,
    OP_FAILED: DeploymentStatus.FAILED,
    OP_ROLLING_BACK: DeploymentStatus.ROLLING_BACK,
    OP_ROLLED_BACK: DeploymentStatus.FAILED,
}

#: NS record ``nsState`` (used when no operation decides, and to refine a successful one).
_NS_STATE_STATUS: dict[str, DeploymentStatus] = {
    "NOT_INSTANTIATED": DeploymentStatus.PENDING,
    "BUILDING": DeploymentStatus.DEPLOYING,
    "READY": DeploymentStatus.DEPLOYED,
    "DEGRADED": DeploymentStatus.DEGRADED,
    "BROKEN": DeploymentStatus.FAILED,
    "TERMINATING": DeploymentStatus.DELETING,
}


def op_status(operation_type: str | None, operation_state: str | None) -> DeploymentStatus:
    """Status implied by an NS LCM operation occurrence."""
    table = _TERMINATE_STATUS if operation_type == "terminate" else _OP_STATUS
    return table.get(operation_state or "", DeploymentStatus.UNKNOWN)


def is_rollback(operation: dict[str, object]) -> bool:
    params = operation.get("operationParams")
    return (
        operation.get("lcmOperationType") == "action"
        and isinstance(params, dict)
        and params.get("primitive") == "rollback"
    )


def ns_status(ns_state: str | None) -> DeploymentStatus:
    return _NS_STATE_STATUS.get(ns_state or "", DeploymentStatus.UNKNOWN)


def deployment_status(
    ns_state: str | None, latest_operation: dict[str, object] | None
) -> DeploymentStatus:
    """The gateway status of an NS: the latest operation decides, ``nsState`` refines.

    A running rollback primitive reports ROLLING_BACK; a successfully finished operation on an
    NS whose record says DEGRADED or BROKEN reports that instead of DEPLOYED.
    """
    if latest_operation is None:
        return ns_status(ns_state)
    op_type = latest_operation.get("lcmOperationType")
    op_state = latest_operation.get("operationState")
    status = op_status(
        op_type if isinstance(op_type, str) else None,
        op_state if isinstance(op_state, str) else None,
    )
    if status is DeploymentStatus.DEPLOYING and is_rollback(latest_operation):
        return DeploymentStatus.ROLLING_BACK
    if status is DeploymentStatus.DEPLOYED:
        refined = ns_status(ns_state)
        if refined in (DeploymentStatus.DEGRADED, DeploymentStatus.FAILED):
            return refined
        if refined is DeploymentStatus.UNKNOWN:
            return DeploymentStatus.UNKNOWN
    return status


__all__ = [
    "SUCCESS_OP_STATES",
    "TERMINAL_OP_STATES",
    "deployment_status",
    "is_rollback",
    "ns_status",
    "op_status",
]

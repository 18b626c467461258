"""OSM's state vocabularies mapped onto the gateway's ``DeploymentStatus`` (backends.md §3.6).

Every table is total over the values OSM documents; anything else maps to ``UNKNOWN`` (never
to ``DEPLOYED``), because OSM has been seen storing odd values (``"nsState": "READ"``).

Evaluated in order (:func:`deployment_status`): the latest LCM operation occurrence decides
(``_OP_STATUS``, ``_TERMINATE_STATUS``; a running ``rollback`` primitive is ROLLING_BACK); with
none, ``nsState`` does. A successful one is refined by the NS record: ``nsState`` DEGRADED or
BROKEN, then ``operational-status`` and ``config-status`` (``_OPERATIONAL_STATUS``,
``_CONFIG_STATUS``) — so an NS instance that fails after the gateway's operation (LCM marks it
``failed``) stops being DEPLOYED. Each KDU of ``_admin.deployed.K8s`` is a resource whose
readiness follows its Helm status (:func:`kdu_readiness`).
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


#: NS record ``operational-status``: what a successful operation's DEPLOYED becomes (``None``:
#: stays). ``init``/``scaling``/``healing``/``terminating`` are an operation at work, which the
#: operation table already says.
_OPERATIONAL_STATUS: dict[str, DeploymentStatus | None] = {
    "init": None,
    "running": None,
    "scaling": None,
    "healing": None,
    "terminating": None,
    "terminated": DeploymentStatus.DELETED,
    "failed": DeploymentStatus.FAILED,
}

#: NS record ``config-status`` (day-1/day-2 configuration of its VNFs): a failed configuration
#: leaves the NS running but not configured as asked.
_CONFIG_STATUS: dict[str, DeploymentStatus | None] = {
    "init": None,
    "configuring": None,
    "configured": None,
    "terminate": None,
    "failed": DeploymentStatus.DEGRADED,
}


def kdu_readiness(status: str | None) -> tuple[bool | None, str | None]:
    """(ready, reason when not) of a KDU from the Helm status OSM records for it
    (``Install complete``, ``Upgrade complete``, ``Rollback complete`` …)."""
    text = (status or "").strip().lower()
    if not text:
        return None, None
    if text.endswith("complete"):
        return True, None
    if "fail" in text or "error" in text:
        return False, "KduFailed"
    return False, "KduInProgress"


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
    ns_state: str | None,
    latest_operation: dict[str, object] | None,
    *,
    operational_status: str | None = None,
    config_status: str | None = None,
) -> DeploymentStatus:
    """The gateway status of an NS: the latest operation decides, the NS record refines.

    A running rollback primitive reports ROLLING_BACK; a successfully finished operation on an
    NS whose record says DEGRADED or BROKEN (``nsState``), ``failed`` (``operational-status``)
    or a failed configuration (``config-status``) reports that instead of DEPLOYED.
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
        return _record_status(operational_status, config_status)
    return status


def _record_status(operational: str | None, config: str | None) -> DeploymentStatus:
    """DEPLOYED as the NS record's operational and configuration status refine it (an absent
    field refines nothing)."""
    for value, table in ((operational, _OPERATIONAL_STATUS), (config, _CONFIG_STATUS)):
        if value is None:
            continue
        if value not in table:
            return DeploymentStatus.UNKNOWN
        refined = table[value]
        if refined is not None:
            return refined
    return DeploymentStatus.DEPLOYED


__all__ = [
    "SUCCESS_OP_STATES",
    "TERMINAL_OP_STATES",
    "deployment_status",
    "is_rollback",
    "kdu_readiness",
    "ns_status",
    "op_status",
]

"""SOL003 representations of the gateway's VNF instances and LCM operation occurrences.

``major`` selects the shape: 2 (SOL003 V3.x, vnflcm v2) or 1 (SOL003 V2.6.1, vnflcm v1, whose
``vimConnectionInfo`` is an array and whose instance has no ``vnfcInfo`` changes here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from netweave.models import OperationState
from netweave.operations.vnflcm import LcmOperation, OpOccView, VnfView

#: Attributes of each type (filter and selector paths must start with one of them).
VNF_INSTANCE_ATTRIBUTES = frozenset(
    {
        "id", "vnfInstanceName", "vnfInstanceDescription", "vnfdId", "vnfProvider",
        "vnfProductName", "vnfSoftwareVersion", "vnfdVersion", "vnfPkgId",
        "vnfConfigurableProperties", "vimConnectionInfo", "instantiationState",
        "instantiatedVnfInfo", "metadata", "extensions", "_links",
    }
)  # fmt: skip
VNF_INSTANCE_REQUIRED = frozenset(
    {"id", "vnfdId", "vnfProvider", "vnfProductName", "vnfSoftwareVersion", "vnfdVersion",
     "instantiationState", "_links"}
)  # fmt: skip
VNF_INSTANCE_DEFAULT_EXCLUDED = (
    "vnfConfigurableProperties",
    "vimConnectionInfo",
    "instantiatedVnfInfo",
    "metadata",
    "extensions",
)
OP_OCC_ATTRIBUTES = frozenset(
    {
        "id", "operationState", "stateEnteredTime", "startTime", "vnfInstanceId", "grantId",
        "operation", "isAutomaticInvocation", "operationParams", "isCancelPending",
        "cancelMode", "error", "resourceChanges", "changedInfo", "affectedVipCps",
        "changedExtConnectivity", "modificationsTriggeredByVnfPkgChange", "warnings", "_links",
    }
)  # fmt: skip
OP_OCC_REQUIRED = frozenset(
    {"id", "operationState", "stateEnteredTime", "startTime", "vnfInstanceId", "operation",
     "isAutomaticInvocation", "isCancelPending"}
)  # fmt: skip
OP_OCC_DEFAULT_EXCLUDED = (
    "operationParams",
    "error",
    "resourceChanges",
    "changedInfo",
    "changedExtConnectivity",
    "lcmCoordinations",
    "modificationsTriggeredByVnfPkgChange",
    "warnings",
)
#: Tasks this face serves for an INSTANTIATED instance (``_links`` names).
_TASKS = {
    "terminate": "terminate",
    "scale": "scale",
    "scaleToLevel": "scale_to_level",
    "heal": "heal",
    "changeCurrentVnfPkg": "change_vnfpkg",
}


def stamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def render_instance(
    view: VnfView,
    base: str,
    major: int,
    resources: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``base``: ``{apiRoot}/vnflcm/v{major}``. ``resources``: the workloads the backend
    reports (GET of one instance); without them ``vnfcResourceInfo`` is left out."""
    record, package = view.record, view.package
    self_href = f"{base}/vnf_instances/{record.vnf_instance_id}"
    body: dict[str, Any] = {
        "id": record.vnf_instance_id,
        "vnfdId": view.vnfd_id,
        "vnfProvider": (package.provider if package and package.provider else ""),
        "vnfProductName": package.name if package else "",
        "vnfSoftwareVersion": package.version if package else "",
        "vnfdVersion": package.version if package else "",
        "instantiationState": "INSTANTIATED" if view.instantiated else "NOT_INSTANTIATED",
    }
    if major == 1:
        body["vnfPkgId"] = view.vnfd_id
    if record.name is not None:
        body["vnfInstanceName"] = record.name
    if record.description is not None:
        body["vnfInstanceDescription"] = record.description
    body["vnfConfigurableProperties"] = record.properties
    body["vimConnectionInfo"] = [] if major == 1 else {}
    links: dict[str, Any] = {"self": _link(self_href)}
    if view.instantiated and view.deployment is not None:
        deployment = view.deployment
        info: dict[str, Any] = {
            "flavourId": record.flavour_id or "default",
            "vnfState": "STOPPED" if deployment.status.value == "SUSPENDED" else "STARTED",
            "scaleStatus": view.scale_status(),
            "maxScaleLevels": [
                {"aspectId": aspect, "scaleLevel": int(spec["maxScaleLevel"])}
                for aspect, spec in record.aspects.items()
            ],
            # The release is the VNF's one external connection point: its namespace's network.
            "extCpInfo": [
                {
                    "id": f"{deployment.name}-ext",
                    "cpdId": "release",
                    "cpConfigId": deployment.namespace,
                    "cpProtocolInfo": [],
                    # The namespace's pod network is the VNF's internal virtual link.
                    "associatedVnfVirtualLinkId": deployment.namespace,
                }
            ],
        }
        if resources is not None:
            info["vnfcResourceInfo"] = [
                {
                    "id": f"{r.get('namespace') or deployment.namespace}/{r['kind']}/{r['name']}",
                    "vduId": r["name"],
                    "computeResource": {
                        "resourceId": r["name"],
                        "vimLevelResourceType": r["kind"],
                    },
                    "metadata": {
                        key: r[key] for key in ("kind", "namespace", "ready", "message") if key in r
                    },
                }
                for r in resources
            ]
        body["instantiatedVnfInfo"] = info
        for name, task in _TASKS.items():
            links[name] = _link(f"{self_href}/{task}")
    elif view.deployment is None:
        links["instantiate"] = _link(f"{self_href}/instantiate")
    body["metadata"] = record.instance_metadata
    body["extensions"] = {
        **record.extensions,
        **(
            {
                "netweave": {
                    "deploymentId": view.deployment.deployment_id,
                    "namespace": view.deployment.namespace,
                    "releaseName": view.deployment.name,
                    "adapter": view.deployment.adapter,
                }
            }
            if view.deployment is not None
            else {}
        ),
    }
    body["_links"] = links
    return body


def render_op_occ(view: OpOccView, base: str, major: int) -> dict[str, Any]:
    record, operation = view.record, view.operation
    state = view.state
    self_href = f"{base}/vnf_lcm_op_occs/{record.op_occ_id}"
    body: dict[str, Any] = {
        "id": record.op_occ_id,
        "operationState": state.value,
        "stateEnteredTime": stamp(view.state_entered_time),
        "startTime": stamp(record.start_time),
        "vnfInstanceId": record.vnf_instance_id,
        "operation": record.operation,
        "isAutomaticInvocation": False,
        "operationParams": record.operation_params,
        "isCancelPending": bool(operation.is_cancel_pending) if operation else False,
    }
    if operation is not None and operation.error and state is not OperationState.COMPLETED:
        error = dict(operation.error)
        error.setdefault("status", 500)
        error.setdefault("detail", error.get("title") or "the operation failed")
        body["error"] = error
    if record.changed_info and state is OperationState.COMPLETED:
        body["changedInfo"] = record.changed_info
    links: dict[str, Any] = {
        "self": _link(self_href),
        "vnfInstance": _link(f"{base}/vnf_instances/{record.vnf_instance_id}"),
    }
    if operation is not None:
        if state is OperationState.FAILED_TEMP:
            for task in ("retry", "fail"):
                links[task] = _link(f"{self_href}/{task}")
            if record.operation != LcmOperation.TERMINATE:
                links["rollback"] = _link(f"{self_href}/rollback")
        if state in (OperationState.STARTING, OperationState.PROCESSING):
            links["cancel"] = _link(f"{self_href}/cancel")
    body["_links"] = links
    return body


__all__ = [
    "OP_OCC_ATTRIBUTES",
    "OP_OCC_DEFAULT_EXCLUDED",
    "OP_OCC_REQUIRED",
    "VNF_INSTANCE_ATTRIBUTES",
    "VNF_INSTANCE_DEFAULT_EXCLUDED",
    "VNF_INSTANCE_REQUIRED",
    "render_instance",
    "render_op_occ",
]

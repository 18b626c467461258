"""SOL003 representations of the gateway's VNF instances and LCM operation occurrences.

``major`` selects the shape: 2 (SOL003 V3.x, vnflcm v2) or 1 (SOL003 V2.6.1, vnflcm v1, whose
``vimConnectionInfo`` is an array; V2.6.1 has no ``vnfPkgId`` in the instance, V2.4.1 had).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from netweave.api.etsi.sol013 import Column, Selector, Term
from netweave.health.readiness import label_selector_matches
from netweave.models import OperationState
from netweave.services.vnflcm import LcmOperation, OpOccView, VnfView
from netweave.services.vnflcm_notify import (
    LINK_KINDS,
    STORAGE_KINDS,
    info_changes,
    resource_id,
    versioned_changes,
)

#: Attributes of each type (filter and selector paths must start with one of them).
VNF_INSTANCE_ATTRIBUTES = frozenset(
    {
        "id", "vnfInstanceName", "vnfInstanceDescription", "vnfdId", "vnfProvider",
        "vnfProductName", "vnfSoftwareVersion", "vnfdVersion",
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
#: v1: NFV-TST 010 v2.6.1's VnfLcmOpOcc requires ``operationParams`` in every occurrence, and its
#: list tests validate the default answer against that schema; SOL003 V2.6.1's text lists it
#: among the default exclusions. The schemas win (as for the rest of v1): it is mandatory there.
OP_OCC_REQUIRED_V1 = OP_OCC_REQUIRED | {"operationParams"}
OP_OCC_DEFAULT_EXCLUDED_V1 = tuple(a for a in OP_OCC_DEFAULT_EXCLUDED if a != "operationParams")


def op_occ_selection(major: int) -> tuple[tuple[str, ...], frozenset[str]]:
    """(default exclusions, mandatory attributes) of a VnfLcmOpOcc list on ``major``."""
    if major == 1:
        return OP_OCC_DEFAULT_EXCLUDED_V1, OP_OCC_REQUIRED_V1
    return OP_OCC_DEFAULT_EXCLUDED, OP_OCC_REQUIRED


#: Attributes rendered straight from a column, for filters pushed down to SQL (sol013.pushdown).
VNF_INSTANCE_COLUMNS = {
    "id": Column("vnf_instance_id"),
    "vnfInstanceName": Column("name"),
    "vnfInstanceDescription": Column("description"),
    # The stored column follows the deployment's package (netweave.services.vnflcm_notify).
    "vnfdId": Column("vnfd_id"),
}
#: Attributes rendered exactly as their JSON column stores them (nested filters pre-filtered).
VNF_INSTANCE_JSON = {"metadata": "metadata", "vnfConfigurableProperties": "properties"}
#: INSTANTIATED needs a deployment (NOT_INSTANTIATED may have one: still being instantiated).
VNF_INSTANCE_STATES = {"instantiationState": ("INSTANTIATED", "NOT_INSTANTIATED", "deployment_id")}
OP_OCC_COLUMNS = {
    "id": Column("op_occ_id"),
    "vnfInstanceId": Column("vnf_instance_id"),
    "operation": Column("operation"),
}


#: Attributes a joined page (``VnfStore.vnf_instance_summaries``) evaluates exactly in SQL, by
#: the name of the column or expression it reads them as (sol013.exact_terms).
VNF_INSTANCE_EXACT = {
    "id": "vnf_instance_id",
    "vnfInstanceName": "name",
    "vnfInstanceDescription": "description",
    "vnfdId": "vnfd_id",
    "instantiationState": "instantiation_state",
    "vnfProvider": "provider",
    "vnfProductName": "product",
    "vnfSoftwareVersion": "software_version",
    "vnfdVersion": "software_version",
}
#: What a joined page can leave out besides the complex attributes (not mandatory ones).
_SUMMARY_OPTIONAL = frozenset({"vnfInstanceName", "vnfInstanceDescription"})


def summary_dropped(selector: Selector) -> frozenset[str] | None:
    """The plain attributes ``selector`` leaves out when it leaves out every complex one (the
    default exclusions: then a joined page renders the items), else None."""
    dropped = set()
    for path in selector.exclude:
        if len(path) != 1:
            return None
        dropped.add(path[0])
    if not dropped.issuperset(VNF_INSTANCE_DEFAULT_EXCLUDED):
        return None
    return frozenset(dropped & _SUMMARY_OPTIONAL)


def render_summary(
    row: Sequence[Any], base: str, major: int, dropped: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A list item from a joined page's row (``VnfStore.vnf_instance_summaries``: id, name,
    description, vnfdId, has a deployment, instantiated, package present, provider, product
    name, version) with the complex attributes left out, as :func:`render_instance` renders
    it and the selector drops them."""
    (vnf_instance_id, name, description, vnfd_id, deployed, instantiated, present,
     provider, product, version) = row  # fmt: skip
    body = instance_summary(
        vnf_instance_id,
        vnfd_id,
        (provider, product, version) if present else None,
        instantiated,
        name,
        description,
    )
    for attribute in dropped:
        body.pop(attribute, None)
    body["_links"] = instance_links(
        f"{base}/vnf_instances/{vnf_instance_id}", instantiated, deployed, major
    )
    return body


#: The stored JSON columns (``vnf_instances``) each attribute of a VnfInstance is rendered from;
#: the other attributes come from plain columns and the package, deployment and operation.
_INSTANCE_JSON_SOURCES = {
    "vnfConfigurableProperties": "properties",
    "metadata": "metadata",
    "extensions": "extensions",
    "instantiatedVnfInfo": "aspects",  # scaleStatus, maxScaleLevels
}


def instance_json_columns(terms: Sequence[Term], selector: Selector) -> frozenset[str]:
    """The JSON columns a list page must read: those of the attributes the selector keeps
    (at least in part) and those the filter looks at. A list never renders the workloads
    (``resources``): only GET of one instance asks the backend for them."""
    dropped = {path[0] for path in selector.exclude if len(path) == 1}
    wanted = {a for a in _INSTANCE_JSON_SOURCES if a not in dropped}
    wanted |= {term.path[0] for term in terms}
    return frozenset(column for a, column in _INSTANCE_JSON_SOURCES.items() if a in wanted)


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


def _resource_info(
    resources: list[dict[str, Any]], namespace: str, adapter: str, major: int
) -> dict[str, list[dict[str, Any]]]:
    """``vnfcResourceInfo``, the virtual links' and the virtual storages' entries, from the
    objects the backend reports (the kinds split as ``resourceChanges`` splits them, with the
    same ids), linked as the report's relations say (``ResourceStatus.claims``, ``podLabels``,
    ``selector``; ``docs/etsi.md``): a VNFC's ``storageResourceIds`` are the reported claims its
    pods mount; each virtual link has one ``vnfLinkPorts`` entry per VNFC whose pods it selects,
    whose ``cpInstanceId`` is that VNFC's ``vnfcCpInfo`` entry for the link."""
    connection = {"vimConnectionId": adapter} if major == 1 else {}

    def handle(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceId": r["name"],
            "vimLevelResourceType": r["kind"],
            # V2.6.1 (TST 010) requires the VIM connection: the adapter instance.
            **connection,
        }

    def metadata(r: dict[str, Any]) -> dict[str, Any]:
        return {key: r[key] for key in ("kind", "namespace", "ready", "message") if key in r}

    vnfcs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    links: list[tuple[dict[str, Any], dict[str, Any]]] = []
    storages: list[dict[str, Any]] = []
    for r in resources:
        r = {**r, "namespace": r.get("namespace") or namespace}
        key = resource_id(r)
        if r["kind"] in STORAGE_KINDS:
            storages.append(
                {
                    "id": key,
                    "virtualStorageDescId": r["name"],
                    "storageResource": handle(r),
                    "metadata": metadata(r),
                }
            )
        elif r["kind"] in LINK_KINDS:
            links.append(
                (
                    r,
                    {
                        "id": key,
                        "vnfVirtualLinkDescId": r["name"],
                        "networkResource": handle(r),
                        "metadata": metadata(r),
                    },
                )
            )
        else:
            vnfcs.append(
                (
                    r,
                    {
                        "id": key,
                        "vduId": r["name"],
                        "computeResource": handle(r),
                        "metadata": metadata(r),
                    },
                )
            )
    # A claim links only to a storage entry the report holds (a StatefulSet's claims are made
    # by its controller, not the package: not reported, so not linked).
    storage_ids = {entry["id"] for entry in storages}
    for r, entry in vnfcs:
        claimed = (
            resource_id({"namespace": r["namespace"], "kind": "PersistentVolumeClaim", "name": c})
            for c in r.get("claims") or ()
        )
        ids = list(dict.fromkeys(i for i in claimed if i in storage_ids))
        if ids:
            entry["storageResourceIds"] = ids
    for link, link_entry in links:
        selector = link.get("selector")
        if selector is None:
            continue  # selects no pod (a Service without a selector)
        ports: list[dict[str, Any]] = []
        for r, entry in vnfcs:
            labels = r.get("pod_labels")
            if (
                labels is None
                or r["namespace"] != link["namespace"]
                or not label_selector_matches(selector, labels)
            ):
                continue
            # One CP of the VNFC per link it is on, and one port of the link per such CP.
            cp_id, port_id = (
                f"{entry['id']}@{link_entry['id']}",
                f"{link_entry['id']}@{entry['id']}",
            )
            entry.setdefault("vnfcCpInfo", []).append(
                {"id": cp_id, "cpdId": link["name"], "vnfLinkPortId": port_id}
            )
            ports.append(
                {
                    "id": port_id,
                    "resourceHandle": {
                        "resourceId": f"{link['name']}/{r['name']}",
                        "vimLevelResourceType": link["kind"],
                        **connection,
                    },
                    "cpInstanceId": cp_id,
                    "cpInstanceType": "VNFC_CP",
                }
            )
        if ports:
            link_entry["vnfLinkPorts"] = ports
    info: dict[str, list[dict[str, Any]]] = {"vnfcResourceInfo": [e for _, e in vnfcs]}
    if links:
        # V2.6.1 names the array virtualLinkResourceInfo (V3.x: vnfVirtualLinkResourceInfo).
        info["virtualLinkResourceInfo" if major == 1 else "vnfVirtualLinkResourceInfo"] = [
            e for _, e in links
        ]
    if storages:
        info["virtualStorageResourceInfo"] = storages
    return info


def instance_summary(
    vnf_instance_id: str,
    vnfd_id: str,
    package: tuple[str | None, str, str] | None,
    instantiated: bool,
    name: str | None,
    description: str | None,
) -> dict[str, Any]:
    """The attributes of a VnfInstance before its complex ones, in the order
    :func:`render_instance` writes them. ``package``: (provider, name, version), ``None`` when
    the package is gone. One function for GET one and a list page's joined read, so both
    answer alike."""
    body: dict[str, Any] = {
        "id": vnf_instance_id,
        "vnfdId": vnfd_id,
        "vnfProvider": (package[0] or "") if package else "",
        "vnfProductName": package[1] if package else "",
        "vnfSoftwareVersion": package[2] if package else "",
        "vnfdVersion": package[2] if package else "",
        "instantiationState": "INSTANTIATED" if instantiated else "NOT_INSTANTIATED",
    }
    if name is not None:
        body["vnfInstanceName"] = name
    if description is not None:
        body["vnfInstanceDescription"] = description
    return body


def instance_links(
    self_href: str, instantiated: bool, has_deployment: bool, major: int
) -> dict[str, Any]:
    """A VnfInstance's ``_links``: the task links its state allows."""
    links: dict[str, Any] = {"self": _link(self_href)}
    if instantiated and has_deployment:
        for name, task in _TASKS.items():
            if major == 1 and task == "change_vnfpkg":
                continue  # V2.6.1 has no such task link (the path is served as an extension)
            links[name] = _link(f"{self_href}/{task}")
    elif not has_deployment:
        links["instantiate"] = _link(f"{self_href}/instantiate")
    return links


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
    body = instance_summary(
        record.vnf_instance_id,
        view.vnfd_id,
        (package.provider, package.name, package.version) if package else None,
        view.instantiated,
        record.name,
        record.description,
    )
    body["vnfConfigurableProperties"] = record.properties
    body["vimConnectionInfo"] = [] if major == 1 else {}
    if major == 1 and view.deployment is not None:
        # The VIM a v1 client may refer to (vimConnectionId): the adapter instance running it.
        body["vimConnectionInfo"] = [{"id": view.deployment.adapter, "vimType": "netweave"}]
    if view.instantiated and view.deployment is not None:
        deployment = view.deployment
        info: dict[str, Any] = {
            "flavourId": record.flavour_id or "default",
            "vnfState": "STOPPED" if deployment.status.value == "SUSPENDED" else "STARTED",
            "scaleStatus": view.scale_status(),
            # The release is the VNF's one external connection point: its namespace's network.
            "extCpInfo": [
                {
                    "id": f"{deployment.name}-ext",
                    "cpdId": "release",
                    "cpProtocolInfo": [],
                    # The namespace's pod network is the VNF's internal virtual link.
                    "associatedVnfVirtualLinkId": deployment.namespace,
                }
            ],
        }
        if major >= 2:
            # V3.x only: V2.6.1's VnfInstance has no maxScaleLevels nor cpConfigId.
            info["maxScaleLevels"] = [
                {"aspectId": aspect, "scaleLevel": int(spec["maxScaleLevel"])}
                for aspect, spec in record.aspects.items()
            ]
            info["extCpInfo"][0]["cpConfigId"] = deployment.namespace
        if resources is not None:
            info.update(_resource_info(resources, deployment.namespace, deployment.adapter, major))
        body["instantiatedVnfInfo"] = info
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
    body["_links"] = instance_links(
        self_href, view.instantiated, view.deployment is not None, major
    )
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
    # What the backend changed (netweave.services.vnflcm_notify), once it reached a result.
    if record.resource_changes:
        vim = operation.adapter if operation is not None else None
        body["resourceChanges"] = versioned_changes(record.resource_changes, major, vim)
    if state is OperationState.COMPLETED:
        body.update(info_changes(record.operation, record.changed_info, major))
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
    "OP_OCC_COLUMNS",
    "OP_OCC_DEFAULT_EXCLUDED",
    "OP_OCC_REQUIRED",
    "VNF_INSTANCE_ATTRIBUTES",
    "VNF_INSTANCE_COLUMNS",
    "VNF_INSTANCE_DEFAULT_EXCLUDED",
    "VNF_INSTANCE_EXACT",
    "VNF_INSTANCE_JSON",
    "VNF_INSTANCE_REQUIRED",
    "VNF_INSTANCE_STATES",
    "op_occ_selection",
    "render_instance",
    "render_op_occ",
    "render_summary",
    "summary_dropped",
]

"""Explicit, total status mappings from ONAP vocabularies to the gateway's ``DeploymentStatus``.

Anything not in a table maps to ``UNKNOWN`` (never to DEPLOYED); the README repeats the tables.
"""

from __future__ import annotations

from typing import Any

from netweave.health.readiness import readiness
from netweave.models import DeploymentStatus, ResourceStatus

S = DeploymentStatus

#: k8s plugin instance ``status`` (``GET /v1/instance/{id}?full=true``), values written by
#: ``internal/app/instance.go``. Hooks run in the PRE-/POST- phases.
K8SPLUGIN_STATUS: dict[str, DeploymentStatus] = {
    "PRE-INSTALL": S.DEPLOYING,
    "CREATING": S.DEPLOYING,
    "CREATED": S.DEPLOYING,
    "POST-INSTALL": S.DEPLOYING,
    "PRE-UPGRADE": S.DEPLOYING,
    "UPGRADING": S.DEPLOYING,
    "UPGRADED": S.DEPLOYING,
    "POST-UPGRADE": S.DEPLOYING,
    "DONE": S.DEPLOYED,
    "PRE-DELETE": S.DELETING,
    "DELETING": S.DELETING,
    "POST-DELETE": S.DELETING,
    "DELETED": S.DELETED,
    "POST-INSTALL-FAILED": S.FAILED,
    "POST-UPGRADE-FAILED": S.FAILED,
    "PRE-DELETE-FAILED": S.FAILED,
    "POST-DELETE-FAILED": S.FAILED,
}

#: Upgrade phases, reported as ROLLING_BACK while the upgrade is netweave's rollback.
K8SPLUGIN_UPGRADE_PHASES = frozenset({"PRE-UPGRADE", "UPGRADING", "UPGRADED", "POST-UPGRADE"})


def map_k8splugin(status: str | None, *, rolling_back: bool = False) -> DeploymentStatus:
    if not status:
        return S.UNKNOWN
    if status in K8SPLUGIN_UPGRADE_PHASES and rolling_back:
        return S.ROLLING_BACK
    mapped = K8SPLUGIN_STATUS.get(status)
    if mapped is not None:
        return mapped
    # The plugin's rule: any status containing FAILED is a failure (new hook phases included).
    return S.FAILED if "FAILED" in status else S.UNKNOWN


def k8splugin_resource(item: dict[str, Any], namespace: str | None) -> ResourceStatus:
    """One entry of the plugin's ``GET /v1/instance/{id}/status`` (``resourcesStatus``: name,
    GVK and ``status``, the live object as the plugin read it from the cluster), judged by the
    kind's own readiness rule (``netweave.health.readiness``). An entry whose object carries no
    ``status`` (a kind without one, or a plugin that did not read it) is not judged."""
    gvk = item.get("GVK") or {}
    kind = str(gvk.get("Kind", ""))
    group, version = str(gvk.get("Group") or ""), str(gvk.get("Version") or "")
    obj = item.get("status")
    ready: bool | None = None
    reason = message = None
    if isinstance(obj, dict) and isinstance(obj.get("status"), dict):
        judged = readiness({"kind": kind, **obj})
        ready, reason, message = judged.ready, judged.reason, judged.message
    return ResourceStatus(
        kind=kind,
        name=str(item.get("name", "")),
        namespace=namespace,
        api_version=(f"{group}/{version}" if group else version) or None,
        ready=ready,
        reason=reason,
        message=message,
    )


#: SO ``requestStatus.requestState`` (``org.onap.so.constants.Status``).
SO_TERMINAL = frozenset(
    {
        "COMPLETE",
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "UNLOCKED",
        "ABORTED",
        "ROLLED_BACK",
        "ROLLED_BACK_TO_ASSIGNED",
        "ROLLED_BACK_TO_CREATED",
    }
)
SO_SUCCESS = frozenset({"COMPLETE", "COMPLETED"})
_SO_RUNNING = frozenset({"IN_PROGRESS", "WAIT_COMPLETION_NOTIF", "PENDING_MANUAL_TASK"})
_SO_FAILED = SO_TERMINAL - SO_SUCCESS


def map_so(request_state: str | None, request_type: str | None) -> DeploymentStatus:
    """The deployment status a service instance is in, from its latest SO request."""
    deleting = (request_type or "").lower().startswith("delete")
    if request_state == "PENDING":
        return S.DELETING if deleting else S.PENDING
    if request_state in _SO_RUNNING:
        return S.DELETING if deleting else S.DEPLOYING
    if request_state in SO_SUCCESS:
        return S.DELETED if deleting else S.DEPLOYED
    if request_state in _SO_FAILED:
        return S.FAILED
    return S.UNKNOWN


__all__ = [
    "K8SPLUGIN_STATUS",
    "SO_SUCCESS",
    "SO_TERMINAL",
    "k8splugin_resource",
    "map_k8splugin",
    "map_so",
]

"""Helm's release statuses in the gateway's vocabulary.

Helm has nine (``pkg/release/common/status.go``). The table is total; anything else (a future
Helm status) maps to ``UNKNOWN``, never to ``DEPLOYED``.

``superseded`` only ever describes an *older* revision that was deployed and then replaced by a
newer one: it is not a failure. As the current state it cannot normally occur; if it does, the
revision was deployed, so ``DEPLOYED``. In history entries it is reported as ``SUPERSEDED``.
"""

from __future__ import annotations

from types import MappingProxyType

from netweave.models import DeploymentStatus

HELM_STATUSES: MappingProxyType[str, DeploymentStatus] = MappingProxyType(
    {
        "unknown": DeploymentStatus.UNKNOWN,
        "deployed": DeploymentStatus.DEPLOYED,
        "uninstalled": DeploymentStatus.DELETED,
        "superseded": DeploymentStatus.DEPLOYED,
        "failed": DeploymentStatus.FAILED,
        "uninstalling": DeploymentStatus.DELETING,
        "pending-install": DeploymentStatus.DEPLOYING,
        "pending-upgrade": DeploymentStatus.DEPLOYING,
        "pending-rollback": DeploymentStatus.ROLLING_BACK,
    }
)

#: History entries: as above, except that a superseded revision says so.
SUPERSEDED = "SUPERSEDED"


def deployment_status(helm_status: str | None) -> DeploymentStatus:
    """The gateway status for Helm's ``helm_status`` (``UNKNOWN`` when unrecognised)."""
    if helm_status is None:
        return DeploymentStatus.UNKNOWN
    return HELM_STATUSES.get(helm_status.strip().lower(), DeploymentStatus.UNKNOWN)


def history_status(helm_status: str | None) -> str:
    if helm_status is not None and helm_status.strip().lower() == "superseded":
        return SUPERSEDED
    return deployment_status(helm_status).value


__all__ = ["HELM_STATUSES", "SUPERSEDED", "deployment_status", "history_status"]

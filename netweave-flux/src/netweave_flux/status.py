"""Flux conditions → the gateway's :class:`DeploymentStatus` (backends.md §2.5), as one table.

The rules are evaluated in order; the first that matches decides. Anything no rule covers is
``UNKNOWN`` (never ``DEPLOYED``).

| # | object state | status |
|---|---|---|
| 1 | ``metadata.deletionTimestamp`` set | DELETING |
| 2 | ``spec.suspend: true`` | SUSPENDED (the state underneath is in the message) |
| 3 | no conditions, or observedGeneration < generation, not Reconciling, no Ready | PENDING |
| 4 | a failure (Stalled, or Ready=False) reported before the newest ``requestedAt``: the \
controller has not answered that request yet (``lastHandledReconcileAt`` differs) | DEPLOYING |
| 4b | ``Stalled=True`` | FAILED (terminal: retries exhausted or a config error) |
| 5 | Reconciling=True or Ready=Unknown, and ``history[0].status`` pending-rollback | ROLLING_BACK |
| 6 | ``Reconciling=True`` or ``Ready=Unknown`` | DEPLOYING |
| 7 | ``Ready=False`` with ``Remediated=True`` | FAILED, the message names the remediation |
| 8 | ``Ready=False`` | FAILED |
| 9 | ``Ready=True`` and observedGeneration == generation | DEPLOYED |
| 10 | ``Ready=True`` and observedGeneration < generation | DEPLOYING (a change not yet seen) |
| - | anything else | UNKNOWN |

Then, for a deployment Flux reports ready (DEPLOYED), the objects of its ``status.inventory``
(what helm-controller or kustomize-controller applied; ``<namespace>_<name>_<group>_<kind>``)
are judged by the kinds' own readiness rules (:mod:`netweave.health.readiness`) where the
adapter reads them (:data:`JUDGED_KINDS`): one not ready makes the deployment DEGRADED (the
core's rule), one gone is drift ``missing`` — Flux itself keeps saying ``Ready=True`` for a
release whose objects were deleted behind its back (unless its drift detection is on and has
corrected it already).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netweave.health.readiness import readiness, relations
from netweave.models import DeploymentStatus, DriftItem, ResourceStatus

from netweave_flux.manifests import ANN_REQUESTED_AT


@dataclass(frozen=True, slots=True)
class MappedStatus:
    status: DeploymentStatus
    message: str | None
    #: The Ready condition's reason (or ``Suspended`` / ``Deleting``), as the backend said it.
    backend_status: str | None


def conditions_of(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status = obj.get("status") or {}
    out: dict[str, dict[str, Any]] = {}
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and isinstance(cond.get("type"), str):
            out[cond["type"]] = cond
    return out


def _is(conds: dict[str, dict[str, Any]], typ: str, value: str) -> bool:
    return (conds.get(typ) or {}).get("status") == value


def has_failed(obj: dict[str, Any]) -> bool:
    """The controller's last attempt failed: ``Stalled=True`` or ``Ready=False``."""
    conds = conditions_of(obj)
    return _is(conds, "Stalled", "True") or _is(conds, "Ready", "False")


def _handled(obj: dict[str, Any]) -> bool:
    """The controller has seen the newest reconcile request (or none was made)."""
    requested = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANN_REQUESTED_AT)
    handled = (obj.get("status") or {}).get("lastHandledReconcileAt")
    return requested is None or handled is None or requested == handled


def map_status(obj: dict[str, Any], *, ignore_suspend: bool = False) -> MappedStatus:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    conds = conditions_of(obj)
    ready = conds.get("Ready") or {}
    reason = ready.get("reason") if isinstance(ready.get("reason"), str) else None
    message = ready.get("message") if isinstance(ready.get("message"), str) else None

    if meta.get("deletionTimestamp"):
        return MappedStatus(DeploymentStatus.DELETING, "deletion in progress", "Deleting")
    if spec.get("suspend") is True and not ignore_suspend:
        under = map_status(obj, ignore_suspend=True)
        return MappedStatus(
            DeploymentStatus.SUSPENDED,
            f"reconciliation suspended; last state {under.status.value}"
            + (f": {under.message}" if under.message else ""),
            "Suspended",
        )
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if ignore_suspend:
        # Suspending changed the spec (a new generation) the controller will not look at: the
        # last state is what it reported for the generation it saw.
        generation = min(generation, observed) if observed else generation
    reconciling = _is(conds, "Reconciling", "True")
    if not conds or (observed < generation and not reconciling and not conds.get("Ready")):
        return MappedStatus(DeploymentStatus.PENDING, "waiting for the Flux controller", reason)
    if has_failed(obj) and not _handled(obj):
        # A retry asked Flux to try again (requestedAt, resetAt): the failure shown is the
        # previous attempt's, not the answer to this request.
        return MappedStatus(
            DeploymentStatus.DEPLOYING, "a reconcile request is waiting for Flux", reason
        )
    if _is(conds, "Stalled", "True"):
        stalled = conds["Stalled"]
        text = str(stalled.get("message") or "")
        if message and _is(conds, "Ready", "False") and message not in text:
            # Stalled only says that Flux gave up ("Failed to upgrade"); why is in Ready.
            text = f"{text}: {message}" if text else message
        return MappedStatus(
            DeploymentStatus.FAILED,
            text or "stalled",
            str(stalled.get("reason") or reason or "Stalled"),
        )
    if reconciling or _is(conds, "Ready", "Unknown"):
        history = status.get("history") or []
        head = history[0] if history and isinstance(history[0], dict) else {}
        if head.get("status") == "pending-rollback":
            return MappedStatus(DeploymentStatus.ROLLING_BACK, message, reason)
        return MappedStatus(DeploymentStatus.DEPLOYING, message, reason)
    if _is(conds, "Ready", "False"):
        remediated = conds.get("Remediated") or {}
        if remediated.get("status") == "True":
            how = str(remediated.get("reason") or "Remediated")
            text = f"{message or 'release failed'} (remediated: {how})"
            return MappedStatus(DeploymentStatus.FAILED, text, reason)
        return MappedStatus(DeploymentStatus.FAILED, message, reason)
    if _is(conds, "Ready", "True"):
        if observed >= generation:
            return MappedStatus(DeploymentStatus.DEPLOYED, message, reason)
        return MappedStatus(DeploymentStatus.DEPLOYING, "a change is waiting for Flux", reason)
    return MappedStatus(DeploymentStatus.UNKNOWN, message, reason)


#: Inventory kinds whose live object the adapter reads and judges: (group, kind).
JUDGED_KINDS = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
    }
)
#: At most this many inventory objects are read per observation (bounded work per poll).
MAX_JUDGED = 20


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    namespace: str
    name: str
    group: str
    kind: str
    version: str

    @property
    def judged(self) -> bool:
        return (self.group, self.kind) in JUDGED_KINDS


def inventory(obj: dict[str, Any]) -> list[InventoryEntry]:
    """The objects Flux applied for ``obj`` (HelmRelease or Kustomization ``status.inventory``)."""
    out = []
    for entry in ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []:
        if not isinstance(entry, dict):
            continue
        parts = str(entry.get("id", "")).split("_")
        if len(parts) == 4:
            namespace, name, group, kind = parts
            out.append(InventoryEntry(namespace, name, group, kind, str(entry.get("v") or "")))
    return out


def judge(
    entries: list[InventoryEntry],
    live: Mapping[InventoryEntry, dict[str, Any] | None],
) -> tuple[tuple[ResourceStatus, ...], tuple[DriftItem, ...]]:
    """Each inventory object's readiness (``live``: the judged ones as read, ``None`` when
    gone; the others are not read: ``ready`` null) and the drift: objects gone."""
    resources = []
    drift = []
    for entry in entries:
        api_version = f"{entry.group}/{entry.version}" if entry.group else entry.version
        if entry not in live:
            resources.append(
                ResourceStatus(
                    kind=entry.kind,
                    name=entry.name,
                    namespace=entry.namespace or None,
                    api_version=api_version or None,
                )
            )
            continue
        obj = live[entry]
        judged = readiness(obj)
        resources.append(
            ResourceStatus(
                kind=entry.kind,
                name=entry.name,
                namespace=entry.namespace or None,
                api_version=api_version or None,
                ready=judged.ready,
                reason=judged.reason,
                message=judged.message,
                # What the ETSI face links: the claims the workload's pods mount, their labels.
                **(relations(obj).fields() if obj is not None else {}),
            )
        )
        if obj is None:
            drift.append(
                DriftItem(
                    change="missing",
                    kind=entry.kind,
                    name=entry.name,
                    namespace=entry.namespace or None,
                    detail="in Flux's inventory but not in the cluster (deleted outside Flux)",
                )
            )
    return tuple(resources), tuple(drift)


__all__ = [
    "JUDGED_KINDS",
    "MAX_JUDGED",
    "InventoryEntry",
    "MappedStatus",
    "conditions_of",
    "has_failed",
    "inventory",
    "judge",
    "map_status",
]

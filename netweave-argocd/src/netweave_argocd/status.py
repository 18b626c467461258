"""Argo CD's sync status, health status and operation phase → the gateway's DeploymentStatus.

Evaluated top-down (the first rule that applies wins):

1. ``metadata.deletionTimestamp`` set → DELETING.
2. An operation requested (top-level ``operation``) or running (``operationState.phase`` Running
   or Terminating) → ROLLING_BACK when it is a rollback (its sync names a ``source``/``sources``,
   which Argo CD's rollback sets and a plain sync leaves empty), else DEPLOYING.
3. The last operation ended ``Failed`` or ``Error`` → FAILED.
4. An error condition (``InvalidSpecError``, ``ComparisonError``, ``SyncError``,
   ``UnknownError``, ``DeletionError``) → FAILED.
5. Otherwise the (sync status, health status) table below; ``automated`` decides whether an
   out-of-sync app is on its way (Argo CD will sync it) or waiting for a sync.

A value outside Argo CD v3.5's vocabularies (an operation phase, sync or health status this
table does not know) → UNKNOWN, never DEPLOYED.

Per resource (``status.resources`` and the resource tree), :data:`RESOURCE_HEALTH` maps Argo
CD's health to the gateway's readiness, and :func:`drift_of` turns ``OutOfSync`` into drift:
a resource Argo CD compares ``OutOfSync`` was edited (``modified``) or deleted (``missing``,
its health ``Missing``) behind Argo CD's back; an Application ``OutOfSync`` with no such
resource differs from its source as a whole (a branch that moved, a spec edited by hand).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from netweave.health.diff import differences, unified
from netweave.models import DeploymentStatus as S
from netweave.models import DriftItem, ResourceDiff

SYNC_STATUSES = frozenset({"Synced", "OutOfSync", "Unknown", ""})
HEALTH_STATUSES = frozenset(
    {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown", ""}
)
PHASES = frozenset({"Running", "Terminating", "Failed", "Error", "Succeeded", ""})
ERROR_CONDITIONS = frozenset(
    {"InvalidSpecError", "ComparisonError", "SyncError", "UnknownError", "DeletionError"}
)

#: ``""`` = not reported yet (a new Application the controller has not compared).
#: A pair maps to one status, or to (status when automated, status when manual).
TABLE: dict[tuple[str, str], S | tuple[S, S]] = {
    ("Synced", "Healthy"): S.DEPLOYED,
    ("Synced", "Progressing"): S.DEPLOYING,
    ("Synced", "Degraded"): S.DEGRADED,
    ("Synced", "Suspended"): S.SUSPENDED,
    # Applied, resources not observed yet.
    ("Synced", "Missing"): S.DEPLOYING,
    ("Synced", "Unknown"): S.UNKNOWN,
    ("Synced", ""): S.DEPLOYING,
    # Out of sync: automated → Argo CD is about to sync; manual → waits for a sync.
    ("OutOfSync", "Healthy"): (S.DEPLOYING, S.PENDING),
    ("OutOfSync", "Progressing"): S.DEPLOYING,
    ("OutOfSync", "Degraded"): S.DEGRADED,
    ("OutOfSync", "Suspended"): S.SUSPENDED,
    ("OutOfSync", "Missing"): (S.DEPLOYING, S.PENDING),
    ("OutOfSync", "Unknown"): S.UNKNOWN,
    ("OutOfSync", ""): (S.DEPLOYING, S.PENDING),
    ("Unknown", "Healthy"): S.UNKNOWN,
    ("Unknown", "Progressing"): S.UNKNOWN,
    ("Unknown", "Degraded"): S.DEGRADED,
    ("Unknown", "Suspended"): S.UNKNOWN,
    ("Unknown", "Missing"): S.UNKNOWN,
    ("Unknown", "Unknown"): S.UNKNOWN,
    ("Unknown", ""): S.UNKNOWN,
    ("", "Healthy"): S.PENDING,
    ("", "Progressing"): S.DEPLOYING,
    ("", "Degraded"): S.DEGRADED,
    ("", "Suspended"): S.SUSPENDED,
    ("", "Missing"): S.PENDING,
    ("", "Unknown"): S.UNKNOWN,
    ("", ""): S.PENDING,
}


#: A resource's Argo CD health → (ready, reason when not). ``Unknown``: Argo CD cannot judge
#: the kind (no health check), so neither does the gateway.
RESOURCE_HEALTH: dict[str, tuple[bool | None, str | None]] = {
    "Healthy": (True, None),
    "Progressing": (False, "Progressing"),
    "Degraded": (False, "Degraded"),
    "Suspended": (False, "Suspended"),
    "Missing": (False, "NotFound"),
    "Unknown": (None, None),
    "": (None, None),
}


def resource_readiness(health: Any) -> tuple[bool | None, str | None, str | None]:
    """(ready, reason, message) of a resource whose Argo CD health is ``health``."""
    status = _str(health, "status")
    ready, reason = RESOURCE_HEALTH.get(status, (None, None))
    message = _str(health, "message") or None
    if status not in RESOURCE_HEALTH:
        message = message or f"unknown Argo CD health {status!r}"
    return ready, reason, message


def drift_of(app: dict[str, Any]) -> tuple[DriftItem, ...]:
    """What Argo CD reports out of sync, as drift (empty when everything is Synced)."""
    status = app.get("status") or {}
    if not status.get("history"):
        return ()  # nothing synced yet: no deployed state to drift from
    found: list[DriftItem] = []
    for resource in status.get("resources") or ():
        if not isinstance(resource, dict) or resource.get("status") != "OutOfSync":
            continue
        if resource.get("hook"):
            continue  # hooks run per sync; they are not the deployed state
        missing = _str(resource, "health", "status") == "Missing"
        if resource.get("requiresPruning"):
            detail = "live but no longer in the source (Argo CD would prune it)"
        elif missing:
            detail = "in the source but not live (deleted outside Argo CD)"
        else:
            detail = "live object differs from the source (Argo CD: OutOfSync)"
        found.append(
            DriftItem(
                change="missing" if missing else "modified",
                kind=str(resource.get("kind") or "") or None,
                name=str(resource.get("name") or "") or None,
                namespace=str(resource.get("namespace") or "") or None,
                detail=detail,
            )
        )
    if not found and _str(status, "sync", "status") == "OutOfSync":
        revision = _str(status, "sync", "revision")
        found.append(
            DriftItem(
                change="modified",
                kind="Application",
                name=_str(app, "metadata", "name") or None,
                detail="Argo CD reports the Application OutOfSync with its source"
                + (f" (last synced revision {revision})" if revision else ""),
            )
        )
    return tuple(found)


def _state(raw: Any) -> dict[str, Any] | None:
    """A JSON-serialized object of the managed-resources answer (``"null"``/empty: none)."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def managed_resource_diff(item: dict[str, Any]) -> ResourceDiff:
    """One ``ResourceDiff`` of Argo CD's managed-resources answer: its target state (desired)
    against its normalized live state, compared and rendered as for every adapter."""
    target = _state(item.get("targetState"))
    live = _state(item.get("normalizedLiveState")) or _state(item.get("liveState"))
    name = str(item.get("name") or "")
    kind = str(item.get("kind") or "")
    label = f"{kind}/{name}"
    state: Literal["in-sync", "modified", "missing"]
    if target is None:
        # Live but not in the source (Argo CD would prune it): all of it differs.
        state = "in-sync" if live is None else "modified"
    elif live is None:
        state = "missing"
    else:
        state = "modified" if differences(target, live) else "in-sync"
    return ResourceDiff(
        kind=kind,
        name=name,
        namespace=str(item.get("namespace") or "") or None,
        state=state,
        diff="" if state == "in-sync" else unified(target, live, label),
    )


@dataclass(frozen=True, slots=True)
class Mapped:
    status: S
    message: str | None
    #: The backend's own words, for diagnosis (``sync=Synced health=Healthy phase=Succeeded``).
    backend_status: str


def _str(node: Any, *path: str) -> str:
    for key in path:
        if not isinstance(node, dict):
            return ""
        node = node.get(key)
    return node if isinstance(node, str) else ""


def automated_enabled(app: dict[str, Any]) -> bool:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    # ``automated: {}`` means on; ``enabled: false`` switches it off explicitly.
    return isinstance(automated, dict) and automated.get("enabled", True) is not False


def _is_rollback(operation: Any) -> bool:
    sync = operation.get("sync") if isinstance(operation, dict) else None
    return isinstance(sync, dict) and bool(sync.get("source") or sync.get("sources"))


def map_status(app: dict[str, Any]) -> Mapped:
    status = app.get("status") or {}
    sync = _str(status, "sync", "status")
    health = _str(status, "health", "status")
    phase = _str(status, "operationState", "phase")
    op_message = _str(status, "operationState", "message") or None
    described = f"sync={sync or '-'} health={health or '-'} phase={phase or '-'}"

    if _str(app, "metadata", "deletionTimestamp"):
        return Mapped(S.DELETING, "the Application is being deleted", described)
    requested = app.get("operation")
    if requested:
        kind = S.ROLLING_BACK if _is_rollback(requested) else S.DEPLOYING
        return Mapped(kind, "an operation is queued", described)
    if phase not in PHASES:
        return Mapped(S.UNKNOWN, f"unknown Argo CD operation phase {phase!r}", described)
    if phase in ("Running", "Terminating"):
        running = (status.get("operationState") or {}).get("operation")
        kind = S.ROLLING_BACK if _is_rollback(running) else S.DEPLOYING
        return Mapped(kind, op_message, described)
    if phase in ("Failed", "Error"):
        return Mapped(S.FAILED, op_message or f"the last sync ended {phase}", described)
    for condition in status.get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") in ERROR_CONDITIONS:
            message = f"{condition.get('type')}: {condition.get('message') or ''}".strip()
            return Mapped(S.FAILED, message, described)
    entry = TABLE.get((sync, health))
    if entry is None:
        return Mapped(S.UNKNOWN, f"unknown Argo CD status ({described})", described)
    if isinstance(entry, tuple):
        entry = entry[0] if automated_enabled(app) else entry[1]
    health_message = _str(status, "health", "message") or None
    if entry is S.PENDING and sync == "OutOfSync":
        health_message = health_message or "out of sync with its source; waiting for a sync"
    return Mapped(entry, health_message, described)

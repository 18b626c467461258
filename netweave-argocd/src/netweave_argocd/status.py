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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netweave.models import DeploymentStatus as S

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

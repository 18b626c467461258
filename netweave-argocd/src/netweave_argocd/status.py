"""Argo CD's sync status, health status and operation phase → the gateway's DeploymentStatus.

Evaluated top-down (the first rule that applies wins):

1. ``metadata.deletionTimestamp`` set → DELETING.
2. An operation requested (top-level ``operation``) or running (``operationState.phase`` Running
   or Terminating) → ROLLING_BACK when it is a rollback (its sync names a ``source``/``sources``,
   which Argo CD's rollback sets and a plain sync leaves empty), else DEPLOYING.
3. The last operation ended ``Failed`` or ``Error`` → FAILED.
4. An error condition (``InvalidSpecError``, ``ComparisonError``, ``SyncError``,
   ``UnknownError``, ``DeletionError``) → FAILED.
5. Otherwise the (sync status, health status) :data:`TABLE`. An ``OutOfSync`` cell depends on
   what comes next (:class:`OutOfSync`): Argo CD syncs the app by itself (:func:`syncs_by_itself`:
   a new target under auto-sync, which is also how an update the gateway made to an automated
   app proceeds — it is in progress), or nothing will change until someone syncs it. Then an
   app synced before runs what its last sync applied and the difference is *drift*
   (:func:`drift_of`: ``kubectl edit``/``delete`` behind Argo CD's back, a source moved); the
   workload's own health decides its status (Healthy → DEPLOYED, with the drift recorded). An
   app never synced waits for its first sync (PENDING).

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
from typing import Any, Literal, NamedTuple

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


class OutOfSync(NamedTuple):
    """An ``OutOfSync`` cell of :data:`TABLE`, by what happens next."""

    #: Argo CD syncs it by itself (auto-sync to a new target, or self-heal): in progress.
    syncing: S
    #: Synced before, nothing syncs it now: what runs is what the last sync applied; the
    #: difference is drift (recorded by :func:`drift_of`), the workload's health decides.
    drifted: S
    #: Never synced, nothing syncs it now: waiting for its first sync.
    first: S


#: ``""`` = not reported yet (a new Application the controller has not compared).
TABLE: dict[tuple[str, str], S | OutOfSync] = {
    ("Synced", "Healthy"): S.DEPLOYED,
    ("Synced", "Progressing"): S.DEPLOYING,
    ("Synced", "Degraded"): S.DEGRADED,
    ("Synced", "Suspended"): S.SUSPENDED,
    # Applied, resources not observed yet.
    ("Synced", "Missing"): S.DEPLOYING,
    ("Synced", "Unknown"): S.UNKNOWN,
    ("Synced", ""): S.DEPLOYING,
    ("OutOfSync", "Healthy"): OutOfSync(S.DEPLOYING, S.DEPLOYED, S.PENDING),
    ("OutOfSync", "Progressing"): S.DEPLOYING,
    ("OutOfSync", "Degraded"): S.DEGRADED,
    ("OutOfSync", "Suspended"): S.SUSPENDED,
    # Drifted: an object the last sync applied is gone (deleted behind Argo CD's back).
    ("OutOfSync", "Missing"): OutOfSync(S.DEPLOYING, S.DEGRADED, S.PENDING),
    ("OutOfSync", "Unknown"): S.UNKNOWN,
    # Drifted with no health reported: no evidence the workload is up.
    ("OutOfSync", ""): OutOfSync(S.DEPLOYING, S.UNKNOWN, S.PENDING),
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
        synced = _str(status, "operationState", "syncResult", "revision")
        target = _str(status, "sync", "revision")
        found.append(
            DriftItem(
                change="modified",
                kind="Application",
                name=_str(app, "metadata", "name") or None,
                detail="Argo CD reports the Application OutOfSync with its source"
                + (f" (last synced revision {synced}, source now at {target})" if synced else ""),
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


def _automated(app: dict[str, Any]) -> dict[str, Any] | None:
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    # ``automated: {}`` means on; ``enabled: false`` switches it off explicitly.
    if isinstance(automated, dict) and automated.get("enabled", True) is not False:
        return automated
    return None


def automated_enabled(app: dict[str, Any]) -> bool:
    return _automated(app) is not None


def _sans_revision(source: Any) -> dict[str, Any]:
    return (
        {k: v for k, v in source.items() if k != "targetRevision"}
        if isinstance(source, dict)
        else {}
    )


def syncs_by_itself(app: dict[str, Any]) -> bool:
    """Argo CD's auto-sync will sync this OutOfSync app without being asked.

    Argo CD attempts one automated sync per target (resolved revision and source parameters):
    an app whose last sync already went to the target it is compared with stays OutOfSync —
    an edit in the cluster is reported, not undone — unless ``selfHeal`` is on. The target
    revision string itself is ignored as Argo CD does (``HEAD`` and ``main`` may resolve to
    the same commit); without a compared revision the whole source decides."""
    automated = _automated(app)
    if automated is None:
        return False
    if automated.get("selfHeal") is True:
        return True
    status = app.get("status") or {}
    result = (status.get("operationState") or {}).get("syncResult")
    if not isinstance(result, dict):
        return True  # never synced: the first automated sync comes
    source = (app.get("spec") or {}).get("source")
    target = _str(status, "sync", "revision")
    if not target:
        return bool(result.get("source") != source)
    return result.get("revision") != target or _sans_revision(result.get("source")) != (
        _sans_revision(source)
    )


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
            error = f"{condition.get('type')}: {condition.get('message') or ''}".strip()
            return Mapped(S.FAILED, error, described)
    entry = TABLE.get((sync, health))
    if entry is None:
        return Mapped(S.UNKNOWN, f"unknown Argo CD status ({described})", described)
    message = _str(status, "health", "message") or None
    if isinstance(entry, OutOfSync):
        # OutOfSync: what happens next decides (see OutOfSync).
        if syncs_by_itself(app):
            return Mapped(entry.syncing, message or "Argo CD is syncing it by itself", described)
        if not status.get("history"):
            return Mapped(entry.first, message or "waiting for its first sync", described)
        drifted = {
            S.DEPLOYED: "running; Argo CD reports it OutOfSync with its source (drift) and "
            "waits for a sync",
            S.DEGRADED: "an object Argo CD deployed is missing (deleted outside Argo CD)",
            S.UNKNOWN: "Argo CD reports it OutOfSync with its source (drift) and no health",
        }
        return Mapped(entry.drifted, message or drifted.get(entry.drifted), described)
    return Mapped(entry, message, described)

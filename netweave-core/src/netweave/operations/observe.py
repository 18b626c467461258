"""One observation of a deployment recorded: the backend's report → status, drift, events.

Shared by the reads (``GET …/nfDeployments/{id}``, ``…/status``) and the reconciler, so both
say the same thing and notify the same way:

* status: :func:`netweave.health.status.observed` (``DEPLOYED`` only when ready, ``DEGRADED``
  for a deployed but unready one, the backend's ``FAILED`` as it is; ``DELETED`` when the
  backend no longer has it);
* drift: what the adapter sees differ between the backend's own record and the live objects
  (deleted, edited), plus what the gateway sees itself: the backend runs another revision,
  package version or other values than the gateway recorded, or no longer has the deployment.
  The record keeps the gateway's desired state (revision, package, values) — the repair
  operation restores it — and the drift says what differs and since when;
* events, in the change's transaction (the durable outbox): ``DeploymentChanged`` for any
  change (as before), ``DeploymentHealthChanged`` when the status changed,
  ``DeploymentDriftDetected`` when a drift appeared or what differs changed.

Nothing is recorded while an operation holds the deployment (its status follows the
operation) — the caller checks — and an unreachable backend changes nothing (the caller
decides what to answer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from netweave.adapters import DeploymentInfo
from netweave.errors import NotFound
from netweave.health.status import drift_changes, observed
from netweave.models import DeploymentStatus, DriftItem, EventType
from netweave.operations.events import HookBus
from netweave.store import DeploymentRecord, Store

GONE_MESSAGE = "the backend no longer has this deployment"


def gone(record: DeploymentRecord) -> DeploymentInfo:
    """What a backend that answered "not found" holds of ``record``."""
    assert record.backend_ref is not None
    return DeploymentInfo(
        backend_ref=record.backend_ref,
        status=DeploymentStatus.DELETED,
        revision=record.revision,
        message=GONE_MESSAGE,
    )


def _values_differ(recorded: dict[str, Any], live: dict[str, Any]) -> list[str]:
    keys = sorted(set(recorded) | set(live))
    return [k for k in keys if recorded.get(k) != live.get(k)]


def differences(record: DeploymentRecord, info: DeploymentInfo) -> list[DriftItem]:
    """What differs between the gateway's record and the backend's report."""
    if info.status is DeploymentStatus.DELETED:
        return [DriftItem(change="uninstalled", detail=info.message or GONE_MESSAGE)]
    found: list[DriftItem] = []
    if info.revision and record.revision and info.revision != record.revision:
        found.append(
            DriftItem(
                change="revision",
                detail=f"the backend runs revision {info.revision}, the gateway deployed "
                f"{record.revision}",
            )
        )
    if info.package_version is not None and info.package_version != record.package_version:
        found.append(
            DriftItem(
                change="package",
                detail=f"the backend runs package version {info.package_version}, the gateway "
                f"deployed {record.package_version}",
            )
        )
    if info.values is not None and info.values != record.values:
        keys = _values_differ(record.values, info.values)
        found.append(DriftItem(change="values", detail="values differ at: " + ", ".join(keys[:10])))
    found.extend(info.drift or ())
    return found


async def record_observation(
    store: Store, hooks: HookBus, record: DeploymentRecord, info: DeploymentInfo
) -> DeploymentRecord:
    """Store what ``info`` says about ``record`` when it differs; events with the change."""
    info = observed(info)
    now = datetime.now(UTC)
    changes: dict[str, Any] = {}
    if info.status != record.status:
        changes["status"] = info.status
    if info.message != record.status_message:
        changes["status_message"] = info.message
    drift = drift_changes(record.drift, differences(record, info), now)
    changes.update(drift)
    if not changes:
        return record
    changes["updated_at"] = now
    try:
        async with hooks.change(store) as events:
            updated = await store.update_deployment(record.deployment_id, **changes)
            events.deployment(EventType.DEPLOYMENT_CHANGED.value, updated)
            if "status" in changes:
                events.deployment(EventType.DEPLOYMENT_HEALTH_CHANGED.value, updated)
            if drift.get("drift"):
                events.deployment(EventType.DEPLOYMENT_DRIFT_DETECTED.value, updated)
    except NotFound:
        raise NotFound(
            f"deployment {record.deployment_id!r} not found",
            details={"deploymentId": record.deployment_id},
        ) from None
    return updated


__all__ = [
    "GONE_MESSAGE",
    "differences",
    "gone",
    "record_observation",
]

"""A backend's report → the deployment's status, by one rule for every adapter.

Adapters report what their backend says (``DeploymentInfo.status``, e.g. Helm's ``deployed``)
and, where they can, each resource's readiness by its kind's rule
(:mod:`netweave.health.readiness`). The gateway then says:

* ``DEPLOYED`` only when the backend says deployed **and** no resource is unready;
* ``DEGRADED`` when the backend says deployed but a resource is not ready (outside an
  operation: a deployed workload stopped being ready; the operation runner instead waits for
  readiness within the write timeout before it decides);
* ``FAILED`` (and every other status) when the backend says so — readiness never turns a
  backend's ``FAILED`` into something else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from netweave.adapters.types import DeploymentInfo
from netweave.models import DeploymentStatus, DriftItem


def resources_ready(info: DeploymentInfo) -> bool | None:
    """``False`` when a resource is not ready, ``True`` when all that could be judged are,
    ``None`` when none could be (the adapter reports no readiness)."""
    judged = [r.ready for r in info.resources if r.ready is not None]
    if not judged:
        return None
    return all(judged)


def unready_message(info: DeploymentInfo) -> str:
    problems = [
        f"{r.kind} {r.name}: {r.reason or 'not ready'}" + (f" ({r.message})" if r.message else "")
        for r in info.resources
        if r.ready is False
    ]
    more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
    return "not ready: " + "; ".join(problems[:3]) + more


def waiting_for_readiness(info: DeploymentInfo) -> bool:
    """The backend says deployed but a resource is not ready yet."""
    return info.status is DeploymentStatus.DEPLOYED and resources_ready(info) is False


def observed(info: DeploymentInfo) -> DeploymentInfo:
    """``info`` with the gateway's status: ``DEGRADED`` for a deployed but unready one."""
    if not waiting_for_readiness(info):
        return info
    return dataclasses.replace(
        info, status=DeploymentStatus.DEGRADED, message=unready_message(info)
    )


def drift_changes(
    previous: dict[str, Any] | None, differences: Sequence[DriftItem], now: datetime
) -> dict[str, Any]:
    """The deployment record's ``drift`` change for ``differences`` found now: cleared when
    there are none, kept with its first ``since`` while the same ones persist; ``{}`` when
    nothing changes."""
    if not differences:
        return {"drift": None} if previous else {}
    items = [d.model_dump(mode="json", by_alias=True, exclude_none=True) for d in differences]
    if previous and previous.get("differences") == items:
        return {}
    since = previous.get("since") if previous else None
    return {"drift": {"since": since or now.isoformat(), "differences": items}}


__all__ = [
    "drift_changes",
    "observed",
    "resources_ready",
    "unready_message",
    "waiting_for_readiness",
]

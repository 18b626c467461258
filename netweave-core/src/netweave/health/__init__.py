"""Health, readiness and drift: what the gateway learns about a deployment between operations.

* :mod:`netweave.health.readiness` — the per-kind readiness rules for Kubernetes objects;
* :mod:`netweave.health.status` — how a backend's report and its resources' readiness become
  the deployment's status (``DEPLOYED`` only when ready, ``DEGRADED`` …) and its drift;
* :mod:`netweave.health.diff` — desired vs live manifests as unified diffs.
"""

from netweave.health.readiness import Readiness, readiness, summary
from netweave.health.status import (
    drift_changes,
    observed,
    resources_ready,
    unready_message,
    waiting_for_readiness,
)

__all__ = [
    "Readiness",
    "drift_changes",
    "observed",
    "readiness",
    "resources_ready",
    "summary",
    "unready_message",
    "waiting_for_readiness",
]

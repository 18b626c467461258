"""Capabilities an adapter declares once (class attribute) and the core reads everywhere."""

from __future__ import annotations

import enum


class Capability(enum.StrEnum):
    PACKAGE_MANAGEMENT = "package-management"
    DEPLOYMENT_LIFECYCLE = "deployment-lifecycle"
    ROLLBACK = "rollback"
    SCALING = "scaling"
    HISTORY = "history"
    LOGS = "logs"
    DRY_RUN = "dry-run"
    GITOPS = "gitops"
    #: Pause and resume reconciliation (GitOps backends: Flux ``spec.suspend``).
    SUSPEND = "suspend"
    #: Compare live objects with the desired ones: drift on reads, ``GET …/diff``.
    DRIFT = "drift"

"""What an adapter instance can do. ``DMSAdapter.CAPABILITIES`` is the class's default (what the
type can do, listed without a configuration); ``DMSAdapter.capabilities`` is the instance's,
computed from its configuration, and the one the core and the conformance kit read."""

from __future__ import annotations

import enum


class Capability(enum.StrEnum):
    #: Onboard, read and delete packages.
    PACKAGE_MANAGEMENT = "package-management"
    #: List the packages the backend holds (a backend with a catalogue; the gateway adopts
    #: packages it finds there).
    PACKAGE_LISTING = "package-listing"
    #: Create, read and delete deployments.
    DEPLOYMENT_LIFECYCLE = "deployment-lifecycle"
    #: Change a running deployment's values or package version (``PATCH``, upgrade).
    DEPLOYMENT_UPDATE = "deployment-update"
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

"""What adapters receive from the core and return to it.

These are domain types, not wire types: the core turns them into the API's models and merges
them with what it stores itself (state, ownership, timestamps). ``backend_ref`` is the adapter's
own handle for a package or deployment (a chart ``name:version``, an Application name, an NS
instance id …); the core stores it and hands it back on every later call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from netweave.models import DeploymentStatus, DriftItem, ResourceStatus, RevisionEntry


@dataclass(frozen=True, slots=True)
class PackageUpload:
    """A package to onboard: an archive already streamed to a temporary file, or a reference."""

    name: str
    version: str
    package_type: str | None = None
    description: str | None = None
    provider: str | None = None
    #: Archive on disk (multipart upload); ``None`` for registration by reference.
    archive: Path | None = None
    archive_size: int | None = None
    #: ``sha256:<hex>`` of the archive, computed by the core while streaming.
    checksum: str | None = None
    #: Registration by reference (``packageUri``) and backend-specific source details.
    package_uri: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    #: The id the gateway gives this package (``{name}-{version}``, with a suffix when that
    #: would collide, or a CSAR's VNFD id), decided before the adapter is called: for the
    #: adapter's logs and labels, never to be rebuilt from the name and version.
    package_id: str | None = None


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """A package as the backend knows it."""

    backend_ref: str
    name: str
    version: str
    package_type: str
    package_uri: str | None = None
    checksum: str | None = None
    description: str | None = None
    provider: str | None = None
    #: Adapter extensions (chart version, app version, dependencies, maintainers …).
    extensions: dict[str, Any] = field(default_factory=dict)
    #: Lint warnings and similar notes the client should see, not errors.
    warnings: tuple[str, ...] = ()
    #: Whether this call stored the package in the backend (an upload, a fetched archive).
    #: ``False`` when it only found it there (a chart the repository already holds). When the
    #: gateway cannot finish onboarding, it withdraws what was stored (``delete_package``),
    #: never what was only found.
    stored: bool = True


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload a package deploys, as rendered with its default values."""

    kind: str
    name: str
    #: Replicas with the default values (``None``: the kind has no replica count).
    replicas: int | None = None
    #: The values key (dotted path) that sets ``replicas``; ``None`` when none does.
    replica_key: str | None = None
    #: (container name, image) of its pod template.
    containers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PackageDescription:
    """What a package deploys (``DMSAdapter.describe_package``): the source of the VNFD the
    gateway generates for a package that carries none (a bare Helm chart)."""

    workloads: tuple[Workload, ...] = ()
    #: Chart metadata the descriptor copies (provider, product name, software version …).
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PackageListing:
    """``DMSAdapter.list_packages_since``'s answer: every package (``complete``) or only those
    added since the token given, and the token to pass next time (``None``: no tracking).
    Either way the packages whose reference the caller said it knows are left out."""

    token: str | None
    packages: list[PackageInfo]
    complete: bool


@dataclass(frozen=True, slots=True)
class KnownState:
    """What the gateway's store records the deployment holds (revision, package, values).

    Given to an update/scale so an adapter can skip reading them back from the backend; it
    is only the gateway's record: trust it when the backend's own revision equals
    ``revision`` (nothing changed behind the gateway's back), else read the backend.
    """

    revision: int
    package: PackageInfo | None
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OperationContext:
    """Identity of the gateway operation a call belongs to.

    ``idempotency_key`` is stable across retries and restarts of the same operation step, so an
    adapter can make a repeated call a no-op on the backend. ``known`` (updates and scales):
    the deployment as the gateway's store records it before the call.
    """

    operation_id: str
    idempotency_key: str
    attempt: int = 1
    known: KnownState | None = None


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """What to deploy: the gateway's request resolved to a package the adapter owns."""

    deployment_id: str
    name: str
    namespace: str
    package: PackageInfo
    values: dict[str, Any] = field(default_factory=dict)
    resource_pool_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeploymentChange:
    """An update: new values and/or a new package; ``values_mode`` is explicit."""

    values: dict[str, Any] | None = None
    package: PackageInfo | None = None
    values_mode: Literal["merge", "replace"] = "merge"
    #: ``True`` pauses reconciliation, ``False`` resumes it, ``None`` leaves it (capability
    #: ``suspend``).
    suspend: bool | None = None


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """A deployment as the backend reports it, already mapped to the gateway's status."""

    backend_ref: str
    status: DeploymentStatus
    revision: int = 0
    message: str | None = None
    backend_status: str | None = None
    package_version: str | None = None
    values: dict[str, Any] | None = None
    resources: tuple[ResourceStatus, ...] = ()
    updated_at: datetime | None = None
    extensions: dict[str, Any] = field(default_factory=dict)
    #: Live objects that differ from what the backend's own record says was applied (deleted,
    #: edited); ``None``: the adapter does not compare them. The core adds what it can see
    #: itself (revision, values, package changed outside the gateway).
    drift: tuple[DriftItem, ...] | None = None


@dataclass(frozen=True, slots=True)
class BackendChanges:
    """What :meth:`DMSAdapter.watch_deployments` reports: deployments (by ``backend_ref``) that
    may have changed, or ``resync``: any may have (a watch restarted from a fresh list)."""

    refs: frozenset[str] = frozenset()
    resync: bool = False


@dataclass(frozen=True, slots=True)
class AdapterHealth:
    healthy: bool
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


__all__ = [
    "AdapterHealth",
    "BackendChanges",
    "DeploymentChange",
    "DeploymentInfo",
    "DeploymentSpec",
    "KnownState",
    "OperationContext",
    "PackageDescription",
    "PackageInfo",
    "PackageListing",
    "PackageUpload",
    "ResourceStatus",
    "RevisionEntry",
    "Workload",
]

"""NF deployments (``nfDeployments``) and their read models."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from netweave.models.base import JsonInt, RequestModel, WireModel

#: RFC 1123 label; Helm's 53-character release limit is enforced by that adapter.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class DeploymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    DEPLOYING = "DEPLOYING"
    DEPLOYED = "DEPLOYED"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    DELETING = "DELETING"
    DELETED = "DELETED"
    DEGRADED = "DEGRADED"
    SUSPENDED = "SUSPENDED"
    #: The backend answered with a state the adapter cannot map; never reported as DEPLOYED.
    UNKNOWN = "UNKNOWN"


class DriftItem(WireModel):
    """One difference between what the gateway deployed and what the backend holds."""

    #: ``missing`` (an object deleted), ``modified`` (an object edited), ``uninstalled`` (the
    #: whole deployment gone), ``revision``, ``values``, ``package`` (changed outside the gateway).
    change: Literal["missing", "modified", "uninstalled", "revision", "values", "package"]
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    detail: str | None = None


class DriftReport(WireModel):
    """What differs since when; present while a drift is detected."""

    since: datetime
    differences: list[DriftItem] = Field(default_factory=list)


class Deployment(WireModel):
    deployment_id: str
    name: str
    namespace: str
    package_id: str
    package_version: str
    resource_pool_id: str | None = None
    status: DeploymentStatus
    status_message: str | None = None
    revision: int = 0
    values: dict[str, Any] = Field(default_factory=dict)
    adapter: str
    created_at: datetime
    updated_at: datetime
    extensions: dict[str, Any] = Field(default_factory=dict)
    #: A change made outside the gateway was found by the reconciler (see ``drift``).
    drift_detected: bool = False
    drift: DriftReport | None = None


class DeploymentList(WireModel):
    items: list[Deployment]
    total: int
    limit: int
    offset: int


class DeploymentRequest(RequestModel):
    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    namespace: str = Field(default="default", pattern=DNS_LABEL_PATTERN, max_length=63)
    package_id: str = Field(min_length=1, max_length=300)
    resource_pool_id: str | None = Field(default=None, max_length=253)
    values: dict[str, Any] = Field(default_factory=dict)
    adapter: str | None = Field(default=None, max_length=63)
    #: Preview only: return the rendered result, change nothing (capability ``dry-run``).
    dry_run: bool = False


class DeploymentUpdate(RequestModel):
    """New values and/or a new package (upgrade). ``valuesMode`` says how values combine."""

    # The document says what the validator below enforces: at least one change is given.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["values"], "properties": {"values": {"type": "object"}}},
                {"required": ["packageId"], "properties": {"packageId": {"type": "string"}}},
                {"required": ["suspend"], "properties": {"suspend": {"type": "boolean"}}},
            ]
        }
    )

    values: dict[str, Any] | None = None
    package_id: str | None = Field(default=None, min_length=1, max_length=300)
    # No default in the schema: it differs by method (the routes apply it).
    values_mode: Literal["merge", "replace"] = Field(
        default="merge",
        description="How the given values combine with the deployment's current ones: PUT "
        "replaces them unless valuesMode is merge; PATCH merges them unless it is "
        "replace.",
    )
    #: Pause (``true``) or resume (``false``) reconciliation; needs capability ``suspend``.
    suspend: bool | None = None
    dry_run: bool = False

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["properties"]["valuesMode"].pop("default", None)
        return schema

    @model_validator(mode="after")
    def _changes_something(self) -> DeploymentUpdate:
        if self.values is None and self.package_id is None and self.suspend is None:
            raise ValueError("an update needs new values, a new packageId and/or suspend")
        return self


class ScaleRequest(RequestModel):
    replicas: JsonInt = Field(ge=0, le=10_000)


class RollbackRequest(RequestModel):
    #: 0 or absent: the previous revision.
    revision: JsonInt = Field(default=0, ge=0)


class ResourceStatus(WireModel):
    kind: str
    name: str
    namespace: str | None = None
    api_version: str | None = None
    #: By the kind's own rule (``docs/health.md``); ``None``: the backend cannot say.
    ready: bool | None = None
    #: Why not ready, in Kubernetes' style (``ReplicasUnavailable``, ``NotFound`` …).
    reason: str | None = None
    message: str | None = None
    #: A fingerprint of the object as the backend applies it (Helm: of its rendered manifest
    #: document): it changes when the object's desired state does. Not every adapter gives one.
    digest: str | None = None
    #: The PersistentVolumeClaims (names, same namespace) a workload's pods mount
    #: (``netweave.health.readiness.relations``); absent: not a workload, or not read.
    claims: list[str] | None = None
    #: The labels of the pods a workload makes (its pod template's; a Pod's own).
    pod_labels: dict[str, str] | None = None
    #: The pods a Service or NetworkPolicy selects, as a Kubernetes LabelSelector
    #: (``matchLabels``, ``matchExpressions``; empty: every pod of its namespace).
    selector: dict[str, Any] | None = None


class DeploymentStatusReport(WireModel):
    deployment_id: str
    status: DeploymentStatus
    message: str | None = None
    revision: int = 0
    #: The backend's own words (e.g. Helm's ``superseded``), for diagnosis; not for logic.
    backend_status: str | None = None
    resources: list[ResourceStatus] = Field(default_factory=list)
    #: Every resource ready by its kind's rule (``None``: the backend reports no readiness).
    ready: bool | None = None
    drift_detected: bool = False
    drift: DriftReport | None = None
    updated_at: datetime | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)


class ResourceDiff(WireModel):
    """Desired vs live for one resource, as a unified diff (empty when they agree)."""

    kind: str
    name: str
    namespace: str | None = None
    #: ``in-sync``, ``modified``, ``missing`` (desired, not live), ``added`` (to be created by an
    #: update), ``removed`` (to be deleted by an update).
    state: Literal["in-sync", "modified", "missing", "added", "removed"]
    diff: str = ""


class DeploymentDiff(WireModel):
    deployment_id: str
    #: The revision whose manifests are the desired state.
    revision: int
    drift_detected: bool
    resources: list[ResourceDiff]


class RevisionEntry(WireModel):
    revision: int
    status: str
    package_version: str | None = None
    description: str | None = None
    deployed_at: datetime | None = None
    values: dict[str, Any] | None = None


class RevisionHistory(WireModel):
    deployment_id: str
    revisions: list[RevisionEntry]


class LogOptions(RequestModel):
    container: str | None = Field(default=None, max_length=253)
    tail_lines: int | None = Field(default=None, ge=0, le=100_000)
    since_seconds: int | None = Field(default=None, ge=1, le=31_536_000)
    follow: bool = False


class Preview(WireModel):
    """Result of ``dryRun=true``: rendered manifests keyed by source file, nothing changed."""

    manifests: dict[str, str]
    notes: str | None = None
    #: For an update: what it would change, per resource, against the live objects.
    diff: list[ResourceDiff] | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)

"""Deployment packages (``nfDeploymentDescriptors``)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from netweave.models.base import RequestModel, WireModel

#: name and version rules shared by every adapter; adapters may be stricter.
PACKAGE_NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$"


class PackageState(enum.StrEnum):
    UPLOADED = "UPLOADED"
    AVAILABLE = "AVAILABLE"
    DEPRECATED = "DEPRECATED"
    #: Derived: AVAILABLE or DEPRECATED with at least one deployment using it.
    IN_USE = "IN_USE"


class DeploymentPackage(WireModel):
    package_id: str
    name: str
    artifact_name: str
    artifact_version: str
    description: str | None = None
    provider: str | None = None
    package_type: str
    package_uri: str | None = None
    checksum: str | None = Field(default=None, description="sha256:<hex> of the archive")
    state: PackageState
    adapter: str
    created_at: datetime
    updated_at: datetime
    extensions: dict[str, Any] = Field(default_factory=dict)


class PackageList(WireModel):
    items: list[DeploymentPackage]
    total: int = Field(
        description="Packages matching the filters (counted at most once a second per filter; "
        "exact after a change made through this gateway)."
    )
    limit: int
    offset: int
    nextpage_opaque_marker: str | None = Field(
        default=None,
        description="Pass as nextpageOpaqueMarker for the page after this one (absent: the "
        "last page). Keyset paging: a deep page costs what the first one does.",
    )


class PackageRegistration(RequestModel):
    """JSON registration of a package by reference (Git source, chart repository, OCI ref)."""

    name: str = Field(pattern=PACKAGE_NAME_PATTERN, max_length=253)
    artifact_version: str = Field(pattern=VERSION_PATTERN, max_length=128)
    package_uri: str = Field(min_length=1, max_length=2048)
    package_type: str | None = Field(default=None, max_length=64)
    adapter: str | None = Field(default=None, max_length=63)
    description: str | None = Field(default=None, max_length=4096)
    provider: str | None = Field(default=None, max_length=253)
    #: Backend-specific source details (e.g. ``path``, ``chart``, ``targetRevision``).
    source: dict[str, Any] = Field(default_factory=dict)


class PackageStateChange(RequestModel):
    """``PATCH`` body: deprecate or restore a package (the other states are the gateway's)."""

    state: Literal["AVAILABLE", "DEPRECATED"]

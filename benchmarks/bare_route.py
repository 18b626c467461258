"""A netweave hook plugin for the API benchmark: a bare Litestar handler on the same server.

It returns the same ``DeploymentPackage`` model, built once, with no auth, store or adapter —
the ceiling the gateway's ``GET nfDeploymentDescriptors/{id}`` is measured against (P1).
Mounted through ``netweave_app_init``, the product's own extension point.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import get
from netweave import hookimpl
from netweave.models import DeploymentPackage, PackageState

_NOW = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLE = DeploymentPackage(
    package_id="bench-05000-1.0.0",
    name="bench-05000",
    artifact_name="bench-05000-1.0.0.tgz",
    artifact_version="1.0.0",
    package_type="helm",
    state=PackageState.AVAILABLE,
    adapter="helm-local",
    checksum="sha256:" + "0" * 64,
    created_at=_NOW,
    updated_at=_NOW,
    extensions={"chartVersion": "1.0.0", "appVersion": "1.0"},
)


@get("/bench/bare", include_in_schema=False, sync_to_thread=False)
def bare() -> DeploymentPackage:
    return SAMPLE


@hookimpl
def netweave_app_init(app_config: Any, adapters: dict[str, Any]) -> list[Any]:
    return [bare]

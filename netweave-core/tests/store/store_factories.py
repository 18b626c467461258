"""Record factories for the store tests (valid records with every required field)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from netweave.models import DeploymentStatus, OperationState, OperationType, PackageState
from netweave.store.records import DeploymentRecord, OperationRecord, PackageRecord

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def package(name: str = "nginx", version: str = "1.0.0", **over: Any) -> PackageRecord:
    values: dict[str, Any] = {
        "package_id": f"{name}-{version}",
        "name": name,
        "version": version,
        "artifact_name": name,
        "package_type": "helm",
        "state": PackageState.AVAILABLE,
        "adapter": "helm-local",
        "backend_ref": f"charts/{name}-{version}.tgz",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(over)
    return PackageRecord(**values)


def deployment(name: str = "web", **over: Any) -> DeploymentRecord:
    values: dict[str, Any] = {
        "deployment_id": f"dep-{name}",
        "name": name,
        "namespace": "default",
        "package_id": "nginx-1.0.0",
        "package_version": "1.0.0",
        "adapter": "helm-local",
        "status": DeploymentStatus.PENDING,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(over)
    return DeploymentRecord(**values)


def operation(n: int = 0, **over: Any) -> OperationRecord:
    values: dict[str, Any] = {
        "operation_id": f"op-{n:05d}",
        "operation_type": OperationType.CREATE,
        "deployment_id": "dep-web",
        "adapter": "helm-local",
        "state": OperationState.STARTING,
        "start_time": T0 + timedelta(seconds=n),
        "state_entered_time": T0 + timedelta(seconds=n),
    }
    values.update(over)
    return OperationRecord(**values)

"""The catalogue of deliberate mistakes the kit must catch, each applied alone to the
plain-manifests reference adapter (``test_kit_mutations.py`` runs the kit against each)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from netweave.adapters import DeploymentChange, DeploymentInfo, DeploymentSpec, OperationContext
from netweave.errors import AlreadyExists, BackendError, NetweaveError, NotFound
from netweave.models import DeploymentStatus

try:
    from .manifests_adapter import ManifestsAdapter, _merge
except ImportError:  # imported top-level by the kit runs of test_kit_mutations.py
    from manifests_adapter import ManifestsAdapter, _merge  # type: ignore[no-redef]


class DeployedAfterFailedApply(ManifestsAdapter):
    """Reports DEPLOYED/COMPLETED after the apply failed (errors swallowed)."""

    async def apply_all(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            with contextlib.suppress(NetweaveError):
                await self._k8s("POST", self._path(obj["kind"], obj["metadata"]["namespace"]), obj)


class NoUndoOnFailedCreate(ManifestsAdapter):
    """A failed create leaves its half-applied objects behind."""

    async def apply_all(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            await self._k8s("POST", self._path(obj["kind"], obj["metadata"]["namespace"]), obj)


class IgnoresNamespace(ManifestsAdapter):
    """Deploys into ``default`` whatever namespace was asked for."""

    def target_namespace(self, spec_namespace: str) -> str:
        return "default"


class DeleteLeavesObjects(ManifestsAdapter):
    """Delete removes the deployment's record (values) but leaves its objects."""

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        namespace, name = self._split(backend_ref)
        await self._k8s("DELETE", self._path("ConfigMap", namespace, f"{name}-values"))


class NeverAppliesValues(ManifestsAdapter):
    """Renders the package as is: the requested values never reach the cluster."""

    def render(self, name: str, namespace: str, manifests: Any, values: Any, *a: Any) -> Any:
        return super().render(name, namespace, manifests, {}, *a)


class ReplaceTreatedAsMerge(ManifestsAdapter):
    """``values_mode=replace`` merges like ``merge``."""

    def new_values(self, values: dict[str, Any], change: DeploymentChange) -> dict[str, Any]:
        return _merge(values, change.values or {})


class UpgradeKeepsOldPackage(ManifestsAdapter):
    """An upgrade keeps rendering the old package version."""

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        return await super()._update_deployment(
            backend_ref, dataclasses.replace(change, package=None), ctx
        )


class UpgradeLeavesRemovedObjects(ManifestsAdapter):
    """An upgrade applies the new objects but never prunes what the new version dropped."""

    async def replace_all(self, namespace: str, name: str, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            await self._put(obj)


class ScaleChangesNothing(ManifestsAdapter):
    """Scale records the replica count but never sets it on the workloads."""

    def apply_values(self, obj: dict[str, Any], name: str, values: dict[str, Any]) -> None:
        super().apply_values(obj, name, {k: v for k, v in values.items() if k != "replicaCount"})


class DeployedWithoutReadiness(ManifestsAdapter):
    """DEPLOYED as soon as the objects exist, ready or not."""

    def status_of(self, workloads: list[dict[str, Any]]) -> tuple[DeploymentStatus, str | None]:
        status, message = super().status_of(workloads)
        return (
            (DeploymentStatus.DEPLOYED, None)
            if status is DeploymentStatus.DEPLOYING
            else (
                status,
                message,
            )
        )


class FailedWorkloadNeverFailed(ManifestsAdapter):
    """A workload that fails is reported as still deploying, for ever."""

    def status_of(self, workloads: list[dict[str, Any]]) -> tuple[DeploymentStatus, str | None]:
        status, message = super().status_of(workloads)
        return (
            (DeploymentStatus.DEPLOYING, message)
            if status is DeploymentStatus.FAILED
            else (
                status,
                message,
            )
        )


class RetriedCreateFails(ManifestsAdapter):
    """A retried create with the same idempotency key answers AlreadyExists."""

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        if await self._get("ConfigMap", spec.namespace, f"{spec.name}-values") is not None:
            raise AlreadyExists(f"deployment {spec.name!r} exists")
        return await super()._create_deployment(spec, ctx)


class DeploymentsOverwriteEachOther(ManifestsAdapter):
    """Objects named after the package's manifests only: a second deployment takes them over."""

    def object_name(self, deployment: str, manifest: dict[str, Any]) -> str:
        return str(manifest["metadata"]["name"])

    async def apply_all(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            await self._put(obj)


class LeaksBackendExceptions(ManifestsAdapter):
    """Reading a deployment lets the Kubernetes client's ApiException escape."""

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        namespace, name = self._split(backend_ref)
        path = self._path("ConfigMap", namespace, f"{name}-values")
        await asyncio.to_thread(self._call, "GET", path)  # unmapped
        return await super()._get_deployment(backend_ref)


class WrongIds(ManifestsAdapter):
    """get_deployment answers with another reference than the one asked for."""

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        info = await super()._get_deployment(backend_ref)
        return dataclasses.replace(info, backend_ref=backend_ref.partition("/")[2])


class WrongErrorClasses(ManifestsAdapter):
    """An unknown deployment is a BackendError (502), not NotFound (404)."""

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        try:
            return await super()._get_deployment(backend_ref)
        except NotFound as exc:
            raise BackendError(exc.message) from exc


#: Each mistake and the kit test that must catch it (the kit test fails for the mistake and
#: passes for the reference adapter, test_manifests_adapter_kit.py). Printed with the kill rate
#: by test_kit_mutations.py.
MUTANTS: dict[type[ManifestsAdapter], str] = {
    DeployedAfterFailedApply: "test_failed_create_is_reported_and_leaves_nothing_half_applied",
    NoUndoOnFailedCreate: "test_failed_create_is_reported_and_leaves_nothing_half_applied",
    IgnoresNamespace: "test_create_get_delete",
    DeleteLeavesObjects: "test_create_get_delete",
    NeverAppliesValues: "test_create_get_delete",
    ReplaceTreatedAsMerge: "test_update_values",
    UpgradeKeepsOldPackage: "test_upgrade_to_another_package_version",
    UpgradeLeavesRemovedObjects: "test_upgrade_to_another_package_version",
    ScaleChangesNothing: "test_scale",
    DeployedWithoutReadiness: "test_readiness_gates_deployed",
    FailedWorkloadNeverFailed: "test_failed_workload_is_reported_failed",
    RetriedCreateFails: "test_retried_create_returns_the_first_result_without_a_second_change",
    DeploymentsOverwriteEachOther: "test_two_deployments_of_one_package_stay_isolated",
    LeaksBackendExceptions: "test_unknown_deployment_is_not_found",
    WrongIds: "test_create_get_delete",
    WrongErrorClasses: "test_unknown_deployment_is_not_found",
}

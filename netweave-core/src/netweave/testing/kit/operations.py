"""Day-2 operations: rollback, scale, history, logs, preview — each gated by its capability."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netweave.adapters import Capability, DeploymentChange, DMSAdapter, PackageInfo
from netweave.errors import InvalidInput, NotFound
from netweave.models import DeploymentStatus, LogOptions
from netweave.testing.kit.base import AdapterFixtures
from netweave.testing.kit.lifecycle import _contains
from netweave.testing.kit.observe import KitObserver, Observation


def _replicas_are(count: int) -> Callable[[Observation], bool]:
    def check(seen: Observation) -> bool:
        return bool(seen.workloads) and all(o.replicas == count for o in seen.workloads)

    return check


class RollbackTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_rollback_to_previous_revision(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        changed_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.ROLLBACK)
        async with self.deployed(
            started_adapter, onboarded_package, namespace, deployment_values
        ) as first:
            await started_adapter.update_deployment(
                first.backend_ref, DeploymentChange(values=changed_values), self.ctx()
            )
            second = await self.settle(started_adapter, first.backend_ref)
            await started_adapter.rollback_deployment(first.backend_ref, 0, self.ctx())
            back = await self.settle(started_adapter, first.backend_ref)
            assert back.revision != second.revision or back.values != second.values, (
                "rollback to the previous revision changed nothing"
            )
            assert not _contains(back.values, changed_values), (
                "after rollback the values of the rolled-back revision are still there: "
                f"{back.values!r}"
            )

    @pytest.mark.asyncio
    async def test_rollback_rejects_negative_revision(self, started_adapter: DMSAdapter) -> None:
        self.require_capability(started_adapter, Capability.ROLLBACK)
        await self.expect_error(
            InvalidInput,
            started_adapter.rollback_deployment("any", -1, self.ctx()),
            "rollback to revision -1",
        )


class ScaleTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_scale(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        self.require_capability(started_adapter, Capability.SCALING)
        spec = self.spec(onboarded_package, namespace, deployment_values)
        info = await self.deploy_spec(started_adapter, spec)
        try:
            await started_adapter.scale_deployment(info.backend_ref, 2, self.ctx())
            scaled = await self.settle(started_adapter, info.backend_ref)
            assert scaled.status is DeploymentStatus.DEPLOYED
            await self.observe_until(
                observer, spec, _replicas_are(2), "after scale to 2 the workloads must want 2"
            )
            # Scaling to zero is a legal request (it was refused by the Go original).
            await started_adapter.scale_deployment(info.backend_ref, 0, self.ctx())
            await self.settle(started_adapter, info.backend_ref)
            await self.observe_until(
                observer, spec, _replicas_are(0), "after scale to 0 the workloads must want 0"
            )
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())

    @pytest.mark.asyncio
    async def test_scale_rejects_negative_replicas(self, started_adapter: DMSAdapter) -> None:
        self.require_capability(started_adapter, Capability.SCALING)
        await self.expect_error(
            InvalidInput,
            started_adapter.scale_deployment("any", -1, self.ctx()),
            "scale to -1 replicas",
        )


class HistoryTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_history_lists_revisions_and_superseded_is_not_failed(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
        changed_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.HISTORY)
        async with self.deployed(
            started_adapter, onboarded_package, namespace, deployment_values
        ) as info:
            await started_adapter.update_deployment(
                info.backend_ref, DeploymentChange(values=changed_values), self.ctx()
            )
            await self.settle(started_adapter, info.backend_ref)
            history = await started_adapter.get_history(info.backend_ref)
            assert len(history) >= 2, f"two changes must leave two revisions, got {history!r}"
            revisions = [entry.revision for entry in history]
            assert len(set(revisions)) == len(revisions), "revision numbers must be unique"
            older = [e for e in history if e.revision != max(revisions)]
            failed = [e.revision for e in older if e.status.upper() == "FAILED"]
            assert not failed, (
                f"revisions {failed} replaced by a later one are reported FAILED; "
                "a superseded revision is not a failure"
            )


class LogsTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_logs(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.LOGS)
        async with self.deployed(
            started_adapter, onboarded_package, namespace, deployment_values
        ) as info:
            five = [
                line
                async for line in started_adapter.stream_logs(
                    info.backend_ref, LogOptions(tail_lines=5)
                )
            ]
            one = [
                line
                async for line in started_adapter.stream_logs(
                    info.backend_ref, LogOptions(tail_lines=1)
                )
            ]
            assert five, "a deployed workload must have log lines"
            assert all(isinstance(line, str) for line in five)
            assert 1 <= len(one) <= len(five), "tailLines=1 must not give more lines than 5"


class PreviewTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_preview_renders_and_changes_nothing(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        namespace: str,
        deployment_values: dict[str, Any],
    ) -> None:
        self.require_capability(started_adapter, Capability.DRY_RUN)
        spec = self.spec(onboarded_package, namespace, deployment_values)
        preview = await started_adapter.preview_deployment(spec)
        assert preview.manifests, "a preview must return the rendered manifests"
        assert all(isinstance(v, str) for v in preview.manifests.values())
        ref = self.unknown_deployment_ref_for(spec.namespace, spec.name)
        await self.expect_error(
            NotFound, started_adapter.get_deployment(ref), "get_deployment after a preview"
        )

    def unknown_deployment_ref_for(self, namespace: str, name: str) -> str:
        """The backend_ref a deployment of this name would get; override to match yours."""
        return f"{namespace}/{name}"

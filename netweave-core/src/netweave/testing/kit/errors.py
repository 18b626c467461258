"""Error mapping and capability honesty: what an SMO sees when things go wrong."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Awaitable, Callable

import pytest

from netweave.adapters import (
    Capability,
    DeploymentChange,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import BackendTimeout, BackendUnavailable, NetweaveError, Unsupported
from netweave.models import LogOptions
from netweave.testing.kit.base import AdapterFixtures, KitBackend

#: One public call per capability, with arguments that pass the template's own validation.
_Probe = Callable[[DMSAdapter, OperationContext], Awaitable[object]]
_PROBES: dict[Capability, _Probe] = {
    Capability.ROLLBACK: lambda a, c: a.rollback_deployment("kit/probe", 0, c),
    Capability.SCALING: lambda a, c: a.scale_deployment("kit/probe", 1, c),
    Capability.HISTORY: lambda a, c: a.get_history("kit/probe"),
    Capability.PACKAGE_MANAGEMENT: lambda a, c: a.get_package("kit/probe"),
    Capability.PACKAGE_LISTING: lambda a, c: a.list_packages(),
    Capability.DEPLOYMENT_LIFECYCLE: lambda a, c: a.get_deployment("kit/probe"),
    Capability.DEPLOYMENT_UPDATE: lambda a, c: a.update_deployment(
        "kit/probe", DeploymentChange(values={"netweaveKit": {"probe": True}}), c
    ),
}


#: Capabilities that are a part of another: undeclared, they are probed only when the whole is
#: declared (an adapter without package management has no package listing either).
_PARENT: dict[Capability, Capability] = {
    Capability.PACKAGE_LISTING: Capability.PACKAGE_MANAGEMENT,
    Capability.DEPLOYMENT_UPDATE: Capability.DEPLOYMENT_LIFECYCLE,
}


def _unimplemented(func: object, default: object) -> bool:
    return func is default or is_placeholder(func)


def is_placeholder(func: object) -> bool:
    """True for a hook whose body only raises ``NotImplementedError`` (the scaffold's stubs)."""
    try:
        source = textwrap.dedent(inspect.getsource(func))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc
    target = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(target, ast.Name) and target.id == "NotImplementedError"


class ErrorMappingTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_undeclared_capabilities_are_unsupported(
        self, started_adapter: DMSAdapter
    ) -> None:
        declared = started_adapter.capabilities
        for capability, probe in _PROBES.items():
            whole = _PARENT.get(capability)
            if capability in declared or (whole is not None and whole not in declared):
                # A part of a capability the adapter lacks answers for the whole (checked
                # with the whole's own probe).
                continue
            error = await self.expect_error(
                Unsupported, probe(started_adapter, self.ctx()), f"{capability.value} (undeclared)"
            )
            assert error.details.get("capability") == capability.value
        if Capability.LOGS not in declared:

            async def drain() -> None:
                async for _ in started_adapter.stream_logs("kit/probe", LogOptions()):
                    pass

            await self.expect_error(Unsupported, drain(), "logs (undeclared)")

    @pytest.mark.asyncio
    async def test_declared_capabilities_are_implemented(self, started_adapter: DMSAdapter) -> None:
        """A declared capability whose hook is not overridden is a lie the API would show as
        501; name the hook."""
        cls = type(started_adapter)
        hooks = {
            Capability.PACKAGE_MANAGEMENT: ["_get_package", "_upload_package", "_delete_package"],
            Capability.PACKAGE_LISTING: ["_list_packages"],
            Capability.DEPLOYMENT_LIFECYCLE: [
                "_create_deployment",
                "_get_deployment",
                "_delete_deployment",
            ],
            Capability.DEPLOYMENT_UPDATE: ["_update_deployment"],
            Capability.ROLLBACK: ["_rollback_deployment"],
            Capability.SCALING: ["_scale_deployment"],
            Capability.HISTORY: ["_get_history"],
            Capability.LOGS: ["_stream_logs"],
            Capability.DRY_RUN: ["_preview_deployment"],
        }
        missing = [
            f"{capability.value}: {hook}"
            for capability, names in hooks.items()
            if capability in started_adapter.capabilities
            for hook in names
            if _unimplemented(started_adapter.implementation_of(hook), getattr(DMSAdapter, hook))
        ]
        assert not missing, f"{cls.__name__} declares capabilities without their hooks: {missing}"

    @pytest.mark.asyncio
    async def test_backend_outage_is_unavailable(
        self,
        started_adapter: DMSAdapter,
        backend: KitBackend | None,
        sample_package: PackageUpload,
    ) -> None:
        if backend is None:
            pytest.skip("no `backend` fixture with outage(): the adapter's tests cannot cut it off")
        package: PackageInfo | None = None
        if Capability.PACKAGE_MANAGEMENT in started_adapter.capabilities:
            package = await started_adapter.upload_package(sample_package)
        with backend.outage():
            if package is not None and Capability.PACKAGE_LISTING in started_adapter.capabilities:
                await self._expect_unavailable(started_adapter.list_packages(), "list_packages")
            if package is not None:
                await self._expect_unavailable(
                    started_adapter.get_package(package.backend_ref), "get_package"
                )
            if Capability.DEPLOYMENT_LIFECYCLE in started_adapter.capabilities:
                await self._expect_unavailable(
                    started_adapter.get_deployment(self.unknown_ref_for_outage()), "get_deployment"
                )
            health = await started_adapter.health()
            assert health.healthy is False, "health() must report an unreachable backend"
        if package is not None:
            await started_adapter.delete_package(package.backend_ref)

    def unknown_ref_for_outage(self) -> str:
        return "default/netweave-kit-outage"

    async def _expect_unavailable(self, call: object, what: str) -> None:
        try:
            await call  # type: ignore[misc]
        except (BackendUnavailable, BackendTimeout) as exc:
            assert exc.unmapped_exception_type is None
            return
        except NetweaveError as exc:
            raise AssertionError(
                f"{what} during a backend outage must be BackendUnavailable (503) or "
                f"BackendTimeout (504), got {type(exc).__name__} (HTTP {exc.status}): {exc.message}"
            ) from exc
        raise AssertionError(f"{what} succeeded during a backend outage")

"""The DMSAdapter template methods: capability checks, validation, timeouts, error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest
from netweave.adapters import (
    AdapterConfig,
    Capability,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
    Timeouts,
)
from netweave.errors import (
    BackendError,
    BackendTimeout,
    InvalidInput,
    NotFound,
    Unsupported,
)
from netweave.models import DeploymentStatus, LogOptions

CTX = OperationContext(operation_id="op-1", idempotency_key="op-1:0")
PKG = PackageInfo(backend_ref="demo:1.0.0", name="demo", version="1.0.0", package_type="helm")


class Probe(DMSAdapter):
    TYPE = "probe"
    DISTRIBUTION = "netweave-probe-not-installed"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.DEPLOYMENT_UPDATE,
            Capability.PACKAGE_MANAGEMENT,
            Capability.PACKAGE_LISTING,
            Capability.LOGS,
        }
    )
    PACKAGE_TYPES = frozenset({"helm"})
    MAX_DEPLOYMENT_NAME_LENGTH = 10

    def __init__(self, name: str = "probe-1", config: AdapterConfig | None = None) -> None:
        super().__init__(name, config or AdapterConfig(timeouts=Timeouts(read=0.2, write=0.2)))
        self.fail_with: Exception | None = None
        self.delay = 0.0
        self.calls = 0

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        return DeploymentInfo(backend_ref=spec.name, status=DeploymentStatus.DEPLOYED, revision=1)

    async def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        for i in range(3):
            if self.fail_with is not None and i == 1:
                raise self.fail_with
            yield f"line {i}"


def spec(name: str = "web") -> DeploymentSpec:
    return DeploymentSpec(deployment_id="d-1", name=name, namespace="default", package=PKG)


async def test_call_reaches_the_hook_and_returns_its_result() -> None:
    adapter = Probe()
    info = await adapter.create_deployment(spec(), CTX)
    assert (info.backend_ref, info.status, adapter.calls) == ("web", DeploymentStatus.DEPLOYED, 1)


async def test_undeclared_capability_is_unsupported_naming_it_and_never_calls_the_hook() -> None:
    adapter = Probe()
    with pytest.raises(Unsupported) as caught:
        await adapter.rollback_deployment("web", 0, CTX)
    assert caught.value.details["capability"] == "rollback"
    assert caught.value.status == 501


async def test_declared_but_unimplemented_hook_is_unsupported_naming_the_hook() -> None:
    adapter = Probe()
    with pytest.raises(Unsupported) as caught:
        await adapter.get_deployment("web")
    assert caught.value.details["hook"] == "_get_deployment"


@pytest.mark.parametrize("name", ["Web", "web_1", "-web", "a-very-long-name", ""])
async def test_deployment_names_are_validated_before_the_backend(name: str) -> None:
    adapter = Probe()
    with pytest.raises(InvalidInput) as caught:
        await adapter.create_deployment(spec(name), CTX)
    assert caught.value.details["field"] == "name"
    assert adapter.calls == 0


async def test_slow_backend_becomes_backend_timeout() -> None:
    adapter = Probe()
    adapter.delay = 5
    with pytest.raises(BackendTimeout) as caught:
        await adapter.create_deployment(spec(), CTX)
    assert caught.value.status == 504


async def test_unmapped_backend_exception_is_wrapped_without_its_type_or_text() -> None:
    adapter = Probe()
    adapter.fail_with = KeyError("secret-token-abc")
    with pytest.raises(BackendError) as caught:
        await adapter.create_deployment(spec(), CTX)
    error = caught.value
    assert "secret-token-abc" not in error.message
    assert "KeyError" not in error.message
    assert error.unmapped_exception_type == "KeyError"


async def test_mapped_errors_pass_through_unchanged() -> None:
    adapter = Probe()
    adapter.fail_with = NotFound("no such release")
    with pytest.raises(NotFound, match="no such release") as caught:
        await adapter.create_deployment(spec(), CTX)
    assert caught.value.unmapped_exception_type is None


async def test_upload_refuses_foreign_package_types_and_empty_sources(tmp_path: Path) -> None:
    adapter = Probe()
    with pytest.raises(InvalidInput, match="package types"):
        await adapter.upload_package(PackageUpload(name="x", version="1", package_type="vnfd"))
    with pytest.raises(InvalidInput, match="archive or a packageUri"):
        await adapter.upload_package(PackageUpload(name="x", version="1", package_type="helm"))


async def test_logs_stream_and_a_mid_stream_failure_is_mapped() -> None:
    adapter = Probe()
    lines = [line async for line in adapter.stream_logs("web", LogOptions())]
    assert lines == ["line 0", "line 1", "line 2"]
    adapter.fail_with = RuntimeError("boom")
    got: list[str] = []
    with pytest.raises(BackendError):
        async for line in adapter.stream_logs("web", LogOptions()):
            got.append(line)
    assert got == ["line 0"]


async def test_health_never_raises() -> None:
    class Sick(Probe):
        async def _health(self):  # type: ignore[no-untyped-def]
            raise ConnectionError("refused")

    health = await Sick().health()
    assert health.healthy is False
    assert health.message is not None and "refused" not in health.message


def test_info_reports_declared_metadata_and_unknown_version_when_not_installed() -> None:
    info = Probe.info()
    assert info.type == "probe"
    assert info.capabilities == Probe.CAPABILITIES
    assert info.version == "0+unknown"
    assert info.contract_version.split(".")[0] == "1"

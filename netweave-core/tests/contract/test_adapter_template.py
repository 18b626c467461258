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
    Unprocessable,
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


class NoUpdates(Probe):
    """An instance whose backend cannot update (as ONAP SO): its capabilities say so."""

    refused: ClassVar[list[tuple[str, bool]]] = []

    @property
    def capabilities(self) -> frozenset[Capability]:
        return super().capabilities - {Capability.DEPLOYMENT_UPDATE, Capability.PACKAGE_LISTING}

    def _unsupported_reason(self, capability: Capability) -> str | None:
        return (
            "this backend has no update API" if capability is Capability.DEPLOYMENT_UPDATE else None
        )

    async def _check_deployment(self, spec: DeploymentSpec, dry_run: bool) -> None:
        NoUpdates.refused.append((spec.name, dry_run))
        if not dry_run:
            raise BackendError("no cluster behind this instance")


def test_coarse_capabilities_declare_their_parts_unless_the_instance_says_otherwise() -> None:
    class Coarse(Probe):
        CAPABILITIES = frozenset({Capability.PACKAGE_MANAGEMENT, Capability.DEPLOYMENT_LIFECYCLE})

    assert Capability.DEPLOYMENT_UPDATE in Coarse().capabilities
    assert Capability.PACKAGE_LISTING in Coarse.info().capabilities
    lacking = NoUpdates()
    assert Capability.DEPLOYMENT_UPDATE not in lacking.capabilities
    assert Capability.DEPLOYMENT_UPDATE not in lacking.instance_info().capabilities
    assert lacking.supports(Capability.DEPLOYMENT_LIFECYCLE)
    assert not lacking.supports(Capability.DEPLOYMENT_UPDATE)


async def test_a_part_the_instance_lacks_is_a_501_with_its_reason_before_the_hook() -> None:
    from netweave.adapters import DeploymentChange

    adapter = NoUpdates()
    with pytest.raises(Unsupported) as caught:
        await adapter.update_deployment("web", DeploymentChange(values={"a": 1}), CTX)
    assert caught.value.details["capability"] == "deployment-update"
    assert "no update API" in caught.value.message
    with pytest.raises(Unsupported) as caught:
        await adapter.check_update("web", DeploymentChange(values={"a": 1}))
    assert caught.value.details["capability"] == "deployment-update"
    with pytest.raises(Unsupported) as caught:
        await adapter.list_packages()
    assert caught.value.details["capability"] == "package-listing"


async def test_check_deployment_validates_then_asks_the_adapter() -> None:
    adapter = NoUpdates()
    NoUpdates.refused.clear()
    with pytest.raises(InvalidInput):
        await adapter.check_deployment(spec("Bad_Name"))
    assert NoUpdates.refused == []  # the name is refused before the adapter's own check
    await adapter.check_deployment(spec("web"), dry_run=True)
    with pytest.raises(BackendError, match="no cluster"):
        await adapter.check_deployment(spec("web"))
    assert NoUpdates.refused == [("web", True), ("web", False)]


async def test_check_package_refuses_a_foreign_type_before_the_adapter() -> None:
    adapter = Probe()
    upload = PackageUpload(name="x", version="1", package_type="vnfd", package_uri="x:1")
    with pytest.raises(Unprocessable) as caught:
        await adapter.check_package(upload)
    assert caught.value.details["field"] == "packageType"
    await adapter.check_package(PackageUpload(name="x", version="1", package_uri="x:1"))


def test_config_model_comes_from_the_type_argument() -> None:
    class AcmeConfig(AdapterConfig):
        server_url: str = "http://127.0.0.1:1"

    class Acme(DMSAdapter[AcmeConfig]):
        TYPE = "acme"
        DISTRIBUTION = "netweave-acme-not-installed"

    assert Acme.Config is AcmeConfig
    config = Acme.Config.model_validate({"serverUrl": "http://127.0.0.1:2"})
    adapter = Acme("a", config, data_dir=Path("/nonexistent/a"))
    assert isinstance(adapter.config, AcmeConfig)
    assert adapter.config.server_url == "http://127.0.0.1:2"
    assert adapter.data_dir == Path("/nonexistent/a")
    with pytest.raises(ValueError, match="bogus"):
        Acme.Config.model_validate({"serverUrl": "x", "bogus": 1})

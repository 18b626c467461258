"""The fixtures an adapter's test class provides, and the helpers every kit test uses.

An adapter distribution's test module subclasses :class:`~netweave.testing.kit.AdapterTestSuite`
(or single mixins) and overrides the required fixtures::

    class TestMyAdapter(AdapterTestSuite):
        @pytest.fixture
        def adapter(self, my_backend) -> DMSAdapter:
            return MyAdapter("mine", MyAdapter.Config(url=my_backend.url))

        @pytest.fixture
        def sample_package(self, tmp_path) -> PackageUpload:
            return PackageUpload(name="demo", version="1.0.0", package_type="helm", archive=...)

Required: ``adapter``, ``sample_package`` and ``observer`` (a
:class:`~netweave.testing.kit.observe.KitObserver` answering from the backend what a deployment
left there; a Kubernetes-backed adapter gets one by setting ``owner_labels``). Optional:
``upgrade_package`` (a second version of the sample that drops one object), ``failing_package``
(one whose apply fails in the backend), ``deployment_values``, ``changed_values``, ``backend`` (a
:class:`KitBackend` that can make the backend fail), and the class attributes
``settle_timeout`` / ``poll_interval`` / ``owner_labels`` / ``kubernetes_fixture``.

Only those (:data:`ADAPTER_FIXTURES`, :data:`ADAPTER_HOOKS`) may be overridden; every other
fixture and helper here is the kit's, and the guard fails a class that replaces one without
:func:`kit_override`. The namespace is the kit's choice (:data:`KIT_NAMESPACE`, never
``default``), so an adapter that ignores it is caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import pytest
import pytest_asyncio

from netweave.adapters import (
    Capability,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import NetweaveError, NotFound
from netweave.models import DeploymentStatus
from netweave.testing.kit.observe import KitObserver, Observation

_E = TypeVar("_E", bound=NetweaveError)
_T = TypeVar("_T")
_counter = itertools.count(1)

#: Marker attribute set by :func:`kit_override` on a test that replaces a kit test.
OVERRIDE_ATTR = "__netweave_kit_override__"

#: The namespace every kit deployment asks for: not ``default`` (where an adapter that ignores
#: the request would put things anyway) and not an adapter's configured default.
KIT_NAMESPACE = "netweave-kit"

#: Prefix of the kit's own skips (an undeclared capability, an optional fixture not given):
#: netweave's pytest plugin fails any other skip of a kit test when backends are required.
KIT_SKIP_PREFIX = "netweave kit: "

#: Fixtures an adapter's test class provides or may replace; every other kit fixture is the
#: kit's own (the guard fails an override without :func:`kit_override`).
ADAPTER_FIXTURES = frozenset(
    {
        "adapter",
        "sample_package",
        "upgrade_package",
        "failing_package",
        "deployment_values",
        "changed_values",
        "backend",
        "observer",
    }
)
#: Methods documented as the adapter's to override (reference shapes) and class settings.
ADAPTER_HOOKS = frozenset(
    {
        "unknown_deployment_ref",
        "unknown_package_ref",
        "unknown_ref_for_outage",
        "unknown_deployment_ref_for",
        "settle_timeout",
        "poll_interval",
        "owner_labels",
        "kubernetes_fixture",
    }
)


def kit_override(reason: str) -> Callable[[_T], _T]:
    """Mark a method that deliberately replaces a kit test; the reason is required and shown.

    Without it, the no-silent-override guard fails the run.
    """
    if not reason or not reason.strip():
        raise ValueError("kit_override needs a reason")

    def mark(func: _T) -> _T:
        setattr(func, OVERRIDE_ATTR, reason.strip())
        return func

    return mark


@runtime_checkable
class KitBackend(Protocol):
    """A handle on the adapter's test backend for the error-mapping tests."""

    def outage(self) -> AbstractContextManager[None]:
        """Inside the block the backend is unreachable (connection refused or 503s)."""
        ...


class AdapterFixtures:
    """Fixtures every kit mixin relies on. Override the required ones in your test class."""

    #: Seconds a deployment may take to reach a settled state in the test backend.
    settle_timeout: ClassVar[float] = float(os.environ.get("NETWEAVE_KIT_SETTLE_TIMEOUT", "60"))
    poll_interval: ClassVar[float] = 0.05
    #: For the default ``observer``: the labels a Kubernetes-backed adapter puts on every object
    #: it applies (values are templates with ``{name}``, ``{namespace}``, ``{deployment_id}``).
    owner_labels: ClassVar[dict[str, str] | None] = None
    #: The fixture giving the :class:`~netweave.testing.k8s.KubernetesEmulator` to observe.
    kubernetes_fixture: ClassVar[str] = "k8s_emulator"

    # -- required --------------------------------------------------------------------------

    @pytest.fixture
    def adapter(self) -> DMSAdapter:
        raise NotImplementedError(
            "the kit needs an `adapter` fixture returning a configured (not started) instance"
        )

    @pytest.fixture
    def sample_package(self) -> PackageUpload:
        raise NotImplementedError(
            "the kit needs a `sample_package` fixture returning a PackageUpload the adapter accepts"
        )

    # -- optional --------------------------------------------------------------------------

    @pytest.fixture
    def upgrade_package(self) -> PackageUpload | None:
        """A newer version of ``sample_package`` (same name), for upgrade tests."""
        return None

    @pytest.fixture
    def deployment_values(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def changed_values(self) -> dict[str, Any]:
        """Values an update applies; must be visible afterwards in ``DeploymentInfo.values``."""
        return {"netweaveKit": {"changed": True}}

    @pytest.fixture
    def failing_package(self) -> PackageUpload | None:
        """A package the adapter onboards but whose apply fails in the backend (an invalid
        object, a missing CRD …): the kit checks the failure is reported and nothing is left
        half-applied."""
        return None

    @pytest.fixture
    def backend(self) -> KitBackend | None:
        return None

    @pytest.fixture
    def observer(self, request: pytest.FixtureRequest) -> KitObserver:
        """What the backend holds for a deployment, read from the backend itself.

        Default: with ``owner_labels`` set, a
        :class:`~netweave.testing.kit.kubernetes.KubernetesObserver` on the emulator of the
        ``kubernetes_fixture`` fixture. Otherwise provide this fixture.
        """
        if self.owner_labels:
            from netweave.testing.kit.kubernetes import KubernetesObserver

            emulator = request.getfixturevalue(self.kubernetes_fixture)
            return KubernetesObserver(emulator, labels=self.owner_labels)
        raise NotImplementedError(
            "the kit needs an `observer` fixture (netweave.testing.kit.KitObserver) that reads "
            "from the backend itself what a deployment left there; a Kubernetes-backed adapter "
            "sets the class attribute `owner_labels` instead. Migration: see "
            "docs/adapter-authors.md, 'The observer'"
        )

    # -- the kit's own ---------------------------------------------------------------------

    @pytest.fixture
    def namespace(self) -> str:
        """The namespace kit deployments ask for: the kit's choice, not the adapter's."""
        return KIT_NAMESPACE

    # -- derived ---------------------------------------------------------------------------

    @pytest_asyncio.fixture
    async def started_adapter(self, adapter: DMSAdapter) -> AsyncIterator[DMSAdapter]:
        await adapter.start()
        try:
            yield adapter
        finally:
            await adapter.stop()

    @pytest_asyncio.fixture
    async def onboarded_package(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> AsyncIterator[PackageInfo]:
        info = await started_adapter.upload_package(sample_package)
        try:
            yield info
        finally:
            # Already deleted by the test, or not deletable while in use.
            with contextlib.suppress(NetweaveError):
                await started_adapter.delete_package(info.backend_ref)

    # -- helpers for kit tests -------------------------------------------------------------

    @staticmethod
    def kit_skip(reason: str) -> None:
        """Skip for a reason the kit accepts (not a missing component)."""
        pytest.skip(KIT_SKIP_PREFIX + reason)

    @staticmethod
    def require_capability(adapter: DMSAdapter, capability: Capability) -> None:
        if capability not in adapter.capabilities:
            AdapterFixtures.kit_skip(
                f"adapter does not declare {capability.value!r}; "
                "test_undeclared_capabilities_are_unsupported checks it answers 501"
            )

    @staticmethod
    def ctx() -> OperationContext:
        n = next(_counter)
        return OperationContext(operation_id=f"kit-op-{n}", idempotency_key=f"kit-op-{n}:0")

    @staticmethod
    def unique_name(prefix: str = "kit") -> str:
        return f"{prefix}-{os.getpid() % 10_000}-{next(_counter)}"

    def spec(
        self,
        package: PackageInfo,
        namespace: str,
        values: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> DeploymentSpec:
        name = name or self.unique_name()
        return DeploymentSpec(
            deployment_id=f"dep-{name}",
            name=name,
            namespace=namespace,
            package=package,
            values=dict(values or {}),
        )

    async def expect_error(self, error_type: type[_E], call: Awaitable[Any], what: str) -> _E:
        """Await ``call``; it must raise ``error_type`` from the core taxonomy, mapped by the
        adapter itself (not the template's safety net for unmapped backend exceptions)."""
        try:
            result = await call
        except NetweaveError as exc:
            leaked = exc.unmapped_exception_type
            assert leaked is None, (
                f"{what}: the adapter let a backend exception ({leaked}) escape; map it to "
                f"{error_type.__name__} from netweave.errors"
            )
            assert isinstance(exc, error_type), (
                f"{what}: expected {error_type.__name__} (HTTP {error_type.status}), got "
                f"{type(exc).__name__} (HTTP {exc.status}): {exc.message}"
            )
            return exc
        raise AssertionError(f"{what}: expected {error_type.__name__}, got a result: {result!r}")

    async def settle(
        self,
        adapter: DMSAdapter,
        backend_ref: str,
        wanted: frozenset[DeploymentStatus] = frozenset({DeploymentStatus.DEPLOYED}),
    ) -> DeploymentInfo:
        """Poll ``get_deployment`` until its status is one of ``wanted``; fail on FAILED or
        when ``settle_timeout`` passes, naming the last status seen."""
        deadline = time.monotonic() + self.settle_timeout
        last: DeploymentInfo | None = None
        while time.monotonic() < deadline:
            last = await adapter.get_deployment(backend_ref)
            if last.status in wanted:
                return last
            if last.status is DeploymentStatus.FAILED and DeploymentStatus.FAILED not in wanted:
                raise AssertionError(
                    f"deployment {backend_ref!r} FAILED while waiting for "
                    f"{sorted(s.value for s in wanted)}: {last.message}"
                )
            await asyncio.sleep(self.poll_interval)
        seen = last.status.value if last else "nothing"
        raise AssertionError(
            f"deployment {backend_ref!r} did not reach {sorted(s.value for s in wanted)} within "
            f"{self.settle_timeout:g} s; last status {seen} (check the adapter's status mapping)"
        )

    async def gone(self, adapter: DMSAdapter, backend_ref: str) -> None:
        """Poll until the deployment is NotFound or DELETED."""
        deadline = time.monotonic() + self.settle_timeout
        while time.monotonic() < deadline:
            try:
                info = await adapter.get_deployment(backend_ref)
            except NotFound:
                return
            if info.status is DeploymentStatus.DELETED:
                return
            await asyncio.sleep(self.poll_interval)
        raise AssertionError(
            f"deployment {backend_ref!r} still exists {self.settle_timeout:g} s after delete"
        )

    async def deploy(
        self, adapter: DMSAdapter, package: PackageInfo, namespace: str, values: dict[str, Any]
    ) -> DeploymentInfo:
        return await self.deploy_spec(adapter, self.spec(package, namespace, values))

    async def deploy_spec(self, adapter: DMSAdapter, spec: DeploymentSpec) -> DeploymentInfo:
        created = await adapter.create_deployment(spec, self.ctx())
        settled = await self.settle(adapter, created.backend_ref)
        assert settled.backend_ref == created.backend_ref, (
            f"get_deployment({created.backend_ref!r}) answered for {settled.backend_ref!r}: "
            "a deployment's backend_ref must stay the one create_deployment returned"
        )
        return settled

    # -- looking at the backend ------------------------------------------------------------

    @staticmethod
    def mark(values: dict[str, Any], token: str) -> dict[str, Any]:
        """``values`` plus a value only this deployment has, so the kit can find it in the
        backend (and tell two deployments' values apart)."""
        return {**values, "netweaveKitMark": token}

    async def observe(self, observer: KitObserver, spec: DeploymentSpec) -> Observation:
        return await observer.observe(spec)

    async def observe_until(
        self,
        observer: KitObserver,
        spec: DeploymentSpec,
        check: Callable[[Observation], bool],
        what: str,
    ) -> Observation:
        """Poll the backend until ``check`` holds (backends converge: garbage collection,
        controllers); fail after ``settle_timeout`` naming ``what`` and the last observation."""
        deadline = time.monotonic() + self.settle_timeout
        seen = await observer.observe(spec)
        while not check(seen):
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what} (deployment {spec.name!r}, namespace {spec.namespace!r}); the "
                    f"backend holds: {seen.describe()}"
                )
            await asyncio.sleep(self.poll_interval)
            seen = await observer.observe(spec)
        return seen

    async def left_nothing(self, observer: KitObserver, spec: DeploymentSpec, what: str) -> None:
        await self.observe_until(
            observer, spec, lambda seen: seen.empty, f"{what}: the backend still holds objects"
        )

    @contextlib.asynccontextmanager
    async def deployed(
        self, adapter: DMSAdapter, package: PackageInfo, namespace: str, values: dict[str, Any]
    ) -> AsyncIterator[DeploymentInfo]:
        """A settled deployment for the block, deleted afterwards whatever the block does."""
        info = await self.deploy(adapter, package, namespace, values)
        try:
            yield info
        finally:
            await adapter.delete_deployment(info.backend_ref, self.ctx())

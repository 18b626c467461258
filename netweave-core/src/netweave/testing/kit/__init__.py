"""The adapter conformance kit.

Subclass :class:`AdapterTestSuite` in an adapter distribution's tests, provide the ``adapter``,
``sample_package`` and ``observer`` fixtures (see :class:`AdapterFixtures` for the optional
ones), and run pytest: every test is gated by the capabilities the adapter declares, checks the
backend itself after every step (through the observer), an undeclared capability must answer
``Unsupported`` (501), and a kit test, helper or fixture may only be replaced with
:func:`kit_override` and a reason. See ``docs/adapter-authors.md``.
"""

from netweave.testing.kit.backend import BackendStateTests
from netweave.testing.kit.base import (
    ADAPTER_FIXTURES,
    KIT_NAMESPACE,
    AdapterFixtures,
    KitBackend,
    kit_override,
)
from netweave.testing.kit.discovery import DiscoveryTests
from netweave.testing.kit.errors import ErrorMappingTests
from netweave.testing.kit.failures import FailurePathTests, KitFaults
from netweave.testing.kit.guard import NoSilentOverrideTests, check_class
from netweave.testing.kit.http import HttpWireTests
from netweave.testing.kit.kubernetes import KubernetesObserver
from netweave.testing.kit.lifecycle import DeploymentLifecycleTests
from netweave.testing.kit.observe import (
    KitObserver,
    KitWorkloads,
    Observation,
    ObservedObject,
)
from netweave.testing.kit.operations import (
    HistoryTests,
    LogsTests,
    PreviewTests,
    RollbackTests,
    ScaleTests,
)
from netweave.testing.kit.packages import PackageManagementTests
from netweave.testing.kit.suite import AdapterTestSuite

__all__ = [
    "ADAPTER_FIXTURES",
    "KIT_NAMESPACE",
    "AdapterFixtures",
    "AdapterTestSuite",
    "BackendStateTests",
    "DeploymentLifecycleTests",
    "DiscoveryTests",
    "ErrorMappingTests",
    "FailurePathTests",
    "HistoryTests",
    "HttpWireTests",
    "KitBackend",
    "KitFaults",
    "KitObserver",
    "KitWorkloads",
    "KubernetesObserver",
    "LogsTests",
    "NoSilentOverrideTests",
    "Observation",
    "ObservedObject",
    "PackageManagementTests",
    "PreviewTests",
    "RollbackTests",
    "ScaleTests",
    "check_class",
    "kit_override",
]

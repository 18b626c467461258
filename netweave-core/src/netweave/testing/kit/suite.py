"""All adapter-level kit tests in one base class."""

from __future__ import annotations

from netweave.testing.kit.backend import BackendStateTests
from netweave.testing.kit.discovery import DiscoveryTests
from netweave.testing.kit.errors import ErrorMappingTests
from netweave.testing.kit.failures import FailurePathTests
from netweave.testing.kit.guard import NoSilentOverrideTests
from netweave.testing.kit.http import HttpWireTests
from netweave.testing.kit.lifecycle import DeploymentLifecycleTests
from netweave.testing.kit.operations import (
    HistoryTests,
    LogsTests,
    PreviewTests,
    RollbackTests,
    ScaleTests,
)
from netweave.testing.kit.packages import PackageManagementTests


class AdapterTestSuite(
    NoSilentOverrideTests,
    DiscoveryTests,
    PackageManagementTests,
    DeploymentLifecycleTests,
    BackendStateTests,
    RollbackTests,
    ScaleTests,
    HistoryTests,
    LogsTests,
    PreviewTests,
    ErrorMappingTests,
    HttpWireTests,
    FailurePathTests,
):
    """Subclass this in your adapter's tests and provide the fixtures of ``AdapterFixtures``."""

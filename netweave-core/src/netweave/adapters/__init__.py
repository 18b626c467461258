"""The adapter contract: ``DMSAdapter``, capabilities, ``AdapterInfo`` and adapter I/O types.

Adapter distributions import only from here, :mod:`netweave.models`, :mod:`netweave.errors`,
:mod:`netweave.hookspecs` (the ``hookimpl`` marker) and :mod:`netweave.testing`.
"""

from netweave.adapters.base import (
    AdapterConfig,
    ConfigSection,
    DMSAdapter,
    Timeouts,
    describe_capabilities,
)
from netweave.adapters.capabilities import Capability
from netweave.adapters.info import AdapterInfo
from netweave.adapters.reads import read_begins
from netweave.adapters.routes import RegisterRoute, Route, RouteRequest, RouteResponse
from netweave.adapters.types import (
    AdapterHealth,
    BackendChanges,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    KnownState,
    OperationContext,
    PackageDescription,
    PackageInfo,
    PackageListing,
    PackageUpload,
    Workload,
)

__all__ = [
    "AdapterConfig",
    "AdapterHealth",
    "AdapterInfo",
    "BackendChanges",
    "Capability",
    "ConfigSection",
    "DMSAdapter",
    "DeploymentChange",
    "DeploymentInfo",
    "DeploymentSpec",
    "KnownState",
    "OperationContext",
    "PackageDescription",
    "PackageInfo",
    "PackageListing",
    "PackageUpload",
    "RegisterRoute",
    "Route",
    "RouteRequest",
    "RouteResponse",
    "Timeouts",
    "Workload",
    "describe_capabilities",
    "read_begins",
]

"""Controllers, one module per resource."""

from __future__ import annotations

from typing import Any

from netweave.api.controllers.adapters import AdapterController
from netweave.api.controllers.deployments import DeploymentController
from netweave.api.controllers.health import api_info, healthz, metrics, readyz
from netweave.api.controllers.operations import OperationController
from netweave.api.controllers.packages import PackageController
from netweave.api.controllers.subscriptions import SubscriptionController

#: Mounted on the /o2dms router behind the bearer-token middleware (netweave.api.auth).
API_CONTROLLERS: tuple[Any, ...] = (
    api_info,
    PackageController,
    DeploymentController,
    OperationController,
    SubscriptionController,
    AdapterController,
)
#: Open: liveness, readiness, metrics (``/schema`` is added by Litestar's OpenAPI plugin).
OPEN_HANDLERS: tuple[Any, ...] = (healthz, readyz, metrics)

__all__ = [
    "API_CONTROLLERS",
    "OPEN_HANDLERS",
    "AdapterController",
    "DeploymentController",
    "OperationController",
    "PackageController",
    "SubscriptionController",
]

"""Wire and domain models. Depends on nothing else in netweave."""

from netweave.models.base import RequestModel, WireModel
from netweave.models.deployments import (
    Deployment,
    DeploymentList,
    DeploymentRequest,
    DeploymentStatus,
    DeploymentStatusReport,
    DeploymentUpdate,
    LogOptions,
    Preview,
    ResourceStatus,
    RevisionEntry,
    RevisionHistory,
    RollbackRequest,
    ScaleRequest,
)
from netweave.models.operations import (
    TERMINAL_STATES,
    Operation,
    OperationList,
    OperationState,
    OperationType,
)
from netweave.models.packages import (
    DeploymentPackage,
    PackageList,
    PackageRegistration,
    PackageState,
    PackageStateChange,
)
from netweave.models.problems import PROBLEM_MEDIA_TYPE, ProblemDetails
from netweave.models.subscriptions import (
    EventType,
    Subscription,
    SubscriptionFilter,
    SubscriptionList,
    SubscriptionRequest,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "TERMINAL_STATES",
    "Deployment",
    "DeploymentList",
    "DeploymentPackage",
    "DeploymentRequest",
    "DeploymentStatus",
    "DeploymentStatusReport",
    "DeploymentUpdate",
    "EventType",
    "LogOptions",
    "Operation",
    "OperationList",
    "OperationState",
    "OperationType",
    "PackageList",
    "PackageRegistration",
    "PackageState",
    "PackageStateChange",
    "Preview",
    "ProblemDetails",
    "RequestModel",
    "ResourceStatus",
    "RevisionEntry",
    "RevisionHistory",
    "RollbackRequest",
    "ScaleRequest",
    "Subscription",
    "SubscriptionFilter",
    "SubscriptionList",
    "SubscriptionRequest",
    "WireModel",
]

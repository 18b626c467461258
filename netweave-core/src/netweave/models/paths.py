"""The native API's paths, named once.

The controllers mount them, and the operation machinery, notifications and the CLI write them
into problem bodies, links and requests; a second spelling would drift from the routes.
"""

from __future__ import annotations

API_PREFIX = "/o2dms/v1"
PACKAGES = f"{API_PREFIX}/nfDeploymentDescriptors"
DEPLOYMENTS = f"{API_PREFIX}/nfDeployments"
OPERATIONS = f"{API_PREFIX}/operations"
SUBSCRIPTIONS = f"{API_PREFIX}/subscriptions"
ADAPTERS = f"{API_PREFIX}/adapters"


def operation_path(operation_id: str, task: str | None = None, *, root: str = "") -> str:
    """``{root}/o2dms/v1/operations/{id}[/{task}]``; ``root`` is the public URL, if any."""
    path = f"{root}{OPERATIONS}/{operation_id}"
    return f"{path}/{task}" if task else path


def deployment_path(deployment_id: str, *, root: str = "") -> str:
    return f"{root}{DEPLOYMENTS}/{deployment_id}"


def package_path(package_id: str, *, root: str = "") -> str:
    return f"{root}{PACKAGES}/{package_id}"


def subscription_path(subscription_id: str, *, root: str = "") -> str:
    return f"{root}{SUBSCRIPTIONS}/{subscription_id}"

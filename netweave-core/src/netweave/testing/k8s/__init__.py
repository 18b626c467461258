"""A Kubernetes API emulator for tests (``netweave.testing.k8s``).

It speaks the real Kubernetes HTTP API on ``127.0.0.1`` well enough for the
real ``kubernetes`` client and the real Helm SDK (helm-python-sdk): discovery,
CRUD with resourceVersions, selectors, all four patch types, watches with
bookmarks, protobuf request bodies, pod logs, validation of built-in kinds and
custom resources, pluggable controllers and fault injection. See
``netweave-core/docs/k8s-emulator.md``.

Names are imported lazily: the pytest plugin imports the fixtures module in
every pytest run, which must stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netweave.testing.k8s.controllers import (
        ANNOTATION_BEHAVIOR,
        ANNOTATION_LOGS,
        ANNOTATION_READY_AFTER,
        ControllerContext,
        Reconciler,
        conditions,
    )
    from netweave.testing.k8s.crds import MULTUS_CRD
    from netweave.testing.k8s.emulator import KubernetesEmulator
    from netweave.testing.k8s.errors import ApiError
    from netweave.testing.k8s.faults import Fault, FaultInjector
    from netweave.testing.k8s.server import RequestRecord

_WHERE = {
    "ANNOTATION_BEHAVIOR": "controllers",
    "ANNOTATION_LOGS": "controllers",
    "ANNOTATION_READY_AFTER": "controllers",
    "ControllerContext": "controllers",
    "Reconciler": "controllers",
    "conditions": "controllers",
    "KubernetesEmulator": "emulator",
    "MULTUS_CRD": "crds",
    "ApiError": "errors",
    "Fault": "faults",
    "FaultInjector": "faults",
    "RequestRecord": "server",
}

__all__ = [
    "ANNOTATION_BEHAVIOR",
    "ANNOTATION_LOGS",
    "ANNOTATION_READY_AFTER",
    "MULTUS_CRD",
    "ApiError",
    "ControllerContext",
    "Fault",
    "FaultInjector",
    "KubernetesEmulator",
    "Reconciler",
    "RequestRecord",
    "conditions",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value

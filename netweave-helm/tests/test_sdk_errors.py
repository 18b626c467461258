"""Every helm_python exception type becomes a netweave error; none leaks."""

from __future__ import annotations

import helm_python
import pytest
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave_helm import sdk

ALL_HELM_ERRORS = [
    getattr(helm_python, name)
    for name in helm_python.__all__
    if name.startswith("Helm") and name.endswith("Error")
]


@pytest.mark.parametrize("error_type", ALL_HELM_ERRORS, ids=lambda t: t.__name__)
def test_every_sdk_error_type_is_mapped(error_type: type[Exception]) -> None:
    mapped = sdk.map_error(error_type("something went wrong"), "doing it")
    assert isinstance(mapped, NetweaveError)
    assert not isinstance(mapped, helm_python.HelmError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (helm_python.HelmNotFoundError("release: not found"), NotFound),
        (helm_python.HelmChartLoadError("unexpected EOF"), InvalidInput),
        (helm_python.HelmValuesError("values don't meet the schema"), InvalidInput),
        (helm_python.HelmRenderError("nil pointer"), InvalidInput),
        (helm_python.HelmKubeError("kubernetes cluster unreachable"), BackendUnavailable),
        (helm_python.HelmCancelledError("context canceled"), BackendTimeout),
        (helm_python.HelmReleaseError("cannot reuse a name that is still in use"), AlreadyExists),
        (
            helm_python.HelmReleaseError(
                "another operation (install/upgrade/rollback) is in progress"
            ),
            Conflict,
        ),
        (helm_python.HelmReleaseError("release has no 7 version"), NotFound),
        (helm_python.HelmReleaseError("something odd"), BackendError),
        (helm_python.HelmRegistryError("GET …: 404 name unknown"), NotFound),
        (
            helm_python.HelmRegistryError("dial tcp 127.0.0.1:1: connection refused"),
            BackendUnavailable,
        ),
        (
            helm_python.HelmRegistryError("401 unauthorized: basic credential not found"),
            BackendError,
        ),
        (helm_python.HelmIOError("disk full"), BackendError),
        (helm_python.HelmPanicError("runtime error: invalid memory address"), BackendError),
    ],
)
def test_mapping(error: Exception, expected: type[NetweaveError]) -> None:
    mapped = sdk.map_error(error, "doing it")
    assert type(mapped) is expected

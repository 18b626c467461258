"""Configuration, status tables, error-body mapping and values helpers."""

from __future__ import annotations

import importlib.metadata

import httpx
import pytest
from netweave.adapters import Capability
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
)
from netweave.models import DeploymentStatus as S
from netweave.testing.kit.errors import is_placeholder
from netweave_onap import K8sPluginBackend, OnapAdapter, OnapConfig, SoBackend
from netweave_onap.errors import k8splugin_error, so_error
from netweave_onap.status import K8SPLUGIN_STATUS, map_k8splugin, map_so
from netweave_onap.values import deep_merge, flatten, unflatten
from pydantic import ValidationError

SO_CONFIG = {
    "backend": "so",
    "soUrl": "http://127.0.0.1:1",
    "username": "InfraPortalClient",
    "password": "s3cret-pw",
    "cloudRegion": "k8sregionone",
    "tenantId": "t1",
}


def test_entry_point_names_the_adapter() -> None:
    (entry,) = [
        e for e in importlib.metadata.entry_points(group="netweave.adapters") if e.name == "onap"
    ]
    assert entry.load() is OnapAdapter
    info = OnapAdapter.info()
    assert (info.type, info.distribution) == ("onap", "netweave-onap")
    # The entry point declares what every onap instance can do: the intersection.
    assert info.capabilities == K8sPluginBackend.CAPABILITIES & SoBackend.CAPABILITIES
    assert info.package_types == {"helm", "sdc-service"}


def test_backend_picks_the_instances_capabilities() -> None:
    so = OnapAdapter("a", OnapConfig.model_validate(SO_CONFIG))
    k8s = OnapAdapter(
        "b", OnapAdapter.Config.model_validate({"k8sPluginUrl": "http://x", "cloudRegion": "r"})
    )
    assert type(so) is OnapAdapter and type(k8s) is OnapAdapter
    assert isinstance(so.backend, SoBackend) and isinstance(k8s.backend, K8sPluginBackend)
    assert Capability.ROLLBACK in k8s.instance_info().capabilities
    assert Capability.ROLLBACK not in so.instance_info().capabilities
    assert so.package_types == {"sdc-service"} and k8s.package_types == {"helm"}
    assert (so.max_deployment_name_length, k8s.max_deployment_name_length) == (63, 53)


def test_the_kit_sees_each_hook_where_the_backend_implements_it() -> None:
    so = OnapAdapter("a", OnapConfig.model_validate(SO_CONFIG))
    k8s = OnapAdapter(
        "b", OnapAdapter.Config.model_validate({"k8sPluginUrl": "http://x", "cloudRegion": "r"})
    )
    # The adapter's own methods only hand the call on; the backend's are what run.
    assert k8s.implementation_of("_rollback_deployment") is K8sPluginBackend._rollback_deployment
    assert so.implementation_of("_create_deployment") is SoBackend._create_deployment
    # SO cannot roll back: its implementation is the backend base's placeholder, which the
    # kit reports if SO ever declared the capability.
    assert is_placeholder(so.implementation_of("_rollback_deployment"))
    assert not is_placeholder(k8s.implementation_of("_rollback_deployment"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cloudRegion": "r"}, "k8sPluginUrl"),
        ({**SO_CONFIG, "tenantId": None}, "tenantId"),
        ({**SO_CONFIG, "password": None}, "password"),
        ({**SO_CONFIG, "soUrl": None}, "soUrl"),
        ({"k8sPluginUrl": "http://x", "cloudRegion": "r", "username": "u"}, "go together"),
        ({"k8sPluginUrl": "http://x", "cloudRegion": "r", "sdcUrl": "http://y"}, "sdcUrl"),
        ({"k8sPluginUrl": "http://x", "cloudRegion": "r", "backend": "sdnc"}, "backend"),
    ],
)
def test_config_is_validated(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OnapConfig.model_validate(config)


def test_password_never_prints() -> None:
    config = OnapConfig.model_validate(SO_CONFIG)
    assert "s3cret-pw" not in repr(config) and "s3cret-pw" not in str(config.model_dump())


def test_k8splugin_status_table_is_total_with_a_safe_fallback() -> None:
    for status, expected in K8SPLUGIN_STATUS.items():
        assert map_k8splugin(status) is expected
    assert map_k8splugin("DONE") is S.DEPLOYED
    assert map_k8splugin("UPGRADING", rolling_back=True) is S.ROLLING_BACK
    assert map_k8splugin("DONE", rolling_back=True) is S.DEPLOYED
    assert map_k8splugin("PRE-UPGRADE-FAILED") is S.FAILED  # any *FAILED
    assert map_k8splugin("SOMETHING-NEW") is S.UNKNOWN
    assert map_k8splugin(None) is S.UNKNOWN


@pytest.mark.parametrize(
    ("state", "kind", "expected"),
    [
        ("PENDING", "createInstance", S.PENDING),
        ("IN_PROGRESS", "createInstance", S.DEPLOYING),
        ("WAIT_COMPLETION_NOTIF", "createInstance", S.DEPLOYING),
        ("PENDING_MANUAL_TASK", "createInstance", S.DEPLOYING),
        ("COMPLETE", "createInstance", S.DEPLOYED),
        ("COMPLETED", "createInstance", S.DEPLOYED),
        ("IN_PROGRESS", "deleteInstance", S.DELETING),
        ("COMPLETE", "deleteInstance", S.DELETED),
        ("FAILED", "createInstance", S.FAILED),
        ("TIMEOUT", "createInstance", S.FAILED),
        ("ABORTED", "deleteInstance", S.FAILED),
        ("ROLLED_BACK", "createInstance", S.FAILED),
        ("ROLLED_BACK_TO_ASSIGNED", "createInstance", S.FAILED),
        ("ROLLED_BACK_TO_CREATED", "createInstance", S.FAILED),
        ("UNLOCKED", "createInstance", S.FAILED),
        ("NEW_STATE", "createInstance", S.UNKNOWN),
        (None, None, S.UNKNOWN),
    ],
)
def test_so_status_table(state: str | None, kind: str | None, expected: S) -> None:
    assert map_so(state, kind) is expected


def _response(status: int, text: str = "", payload: object = None) -> httpx.Response:
    if payload is not None:
        return httpx.Response(status, json=payload)
    return httpx.Response(status, text=text)


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (404, "Get Instance: Error finding master table: mongo: no documents in result", NotFound),
        (500, "Error getting Instance: mongo: no documents in result", NotFound),
        (500, "Unable to find Profile to create instance", NotFound),
        (500, "Definition already exists", AlreadyExists),
        (500, "Profile already exists for this Definition", AlreadyExists),
        (400, "Body empty", InvalidInput),
        (422, "json: cannot unmarshal number into Go struct field", InvalidInput),
        (500, "Error in file format: gzip: invalid header", InvalidInput),
        (500, "Getting CloudRegion Information: connectivity not found", BackendError),
        (503, "", BackendUnavailable),
    ],
)
def test_k8splugin_plain_text_errors(status: int, text: str, expected: type) -> None:
    error = k8splugin_error(_response(status, text))
    assert type(error) is expected
    assert error is not None and (text[:20] in error.message or status == 503)


def test_k8splugin_other_errors_fall_back_to_the_core_mapping() -> None:
    assert k8splugin_error(_response(500, "Create Kubernetes Resources: boom")) is None


def _so_body(text: str, *variables: str, kind: str = "serviceException") -> dict[str, object]:
    return {
        "requestError": {kind: {"messageId": "SVC0002", "text": text, "variables": list(variables)}}
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidInput),
        (404, NotFound),
        (409, Conflict),
        (500, BackendError),
        (503, BackendUnavailable),
    ],
)
def test_so_request_errors(status: int, expected: type) -> None:
    error = so_error(_response(status, payload=_so_body("Instance %1 is %2", "cu-1", "locked")))
    assert type(error) is expected
    assert error is not None
    assert error.message == "SO SVC0002: Instance cu-1 is locked"
    assert error.details == {"messageId": "SVC0002"}


def test_so_policy_exceptions_and_non_json_bodies() -> None:
    error = so_error(_response(400, payload=_so_body("Policy %1", "x", kind="policyException")))
    assert isinstance(error, InvalidInput) and error.message.endswith("Policy x")
    assert so_error(_response(502, "<html>bad gateway</html>")) is None


def test_values_helpers() -> None:
    values = {"image": {"tag": "1.0", "pull": True}, "ports": [80, {"name": "x"}], "a.b": 1}
    flat = flatten(values)
    assert flat == {
        "image.tag": "1.0",
        "image.pull": "true",
        "ports[0]": "80",
        "ports[1].name": "x",
        "a\\.b": "1",
    }
    assert unflatten(flat) == {
        "image": {"tag": "1.0", "pull": "true"},
        "ports": ["80", {"name": "x"}],
        "a.b": "1",
    }
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}, "d": 4}) == {
        "a": {"b": 3, "c": 2},
        "d": 4,
    }


async def test_release_names_follow_helm_limits_on_the_k8s_plugin() -> None:
    from netweave.adapters import DeploymentSpec, OperationContext, PackageInfo

    adapter = OnapAdapter(
        "k", OnapConfig.model_validate({"k8sPluginUrl": "http://127.0.0.1:1", "cloudRegion": "r"})
    )
    package = PackageInfo(backend_ref="a/1", name="a", version="1", package_type="helm")
    spec = DeploymentSpec(deployment_id="d", name="x" * 54, namespace="ns", package=package)
    with pytest.raises(InvalidInput, match="53"):
        await adapter.create_deployment(spec, OperationContext("op", "op:0"))

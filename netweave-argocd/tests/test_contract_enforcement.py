"""The emulator really enforces swagger.json and the CRD: a wrong shape fails, it is not ignored."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from argo_emulator import ArgoEmulator
from conftest import ctx, helm_upload, spec
from netweave.adapters import Capability, DeploymentSpec
from netweave.errors import InvalidInput
from netweave_argocd.adapter import ArgoCDAdapter


async def raw(argo: ArgoEmulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": "Bearer static-token"}
    async with httpx.AsyncClient(base_url=argo.url, headers=headers) as client:
        return await client.request(method, path, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "reason"),
    [
        # rollback takes its project in the body; grpc-gateway declares no query parameters
        (
            "POST",
            "/api/v1/applications/web/rollback",
            {"params": {"project": "p"}, "json": {}},
            "undeclared query",
        ),
        # a field the message does not have
        (
            "POST",
            "/api/v1/applications/web/sync",
            {"json": {"name": "web", "force": True}},
            "unknown field",
        ),
        # the wrong type
        (
            "POST",
            "/api/v1/applications/web/rollback",
            {"json": {"id": "3"}},
            "is not of type 'integer'",
        ),
        # syncOptions is an object with items in a sync request, not a list
        (
            "POST",
            "/api/v1/applications/web/sync",
            {"json": {"syncOptions": ["Prune=true"]}},
            "syncOptions",
        ),
        # no such route / method
        ("PUT", "/api/v1/applications/web/sync", {"json": {}}, "method not allowed"),
        ("GET", "/api/v1/applicationz", {}, "no path template"),
        # the bool grpc-gateway parses is true/false
        ("DELETE", "/api/v1/applications/web", {"params": {"cascade": "yes"}}, "not a boolean"),
        # a GET carries no body
        ("GET", "/api/v1/applications/web", {"json": {"x": 1}}, "no request body"),
        # Application spec fields are checked deep down
        (
            "POST",
            "/api/v1/applications",
            {
                "json": {
                    "metadata": {"name": "w"},
                    "spec": {"source": {"repoURL": "r", "helm": {"valueFiles": "x"}}},
                }
            },
            "valueFiles",
        ),
    ],
)
async def test_request_shapes_swagger_forbids_are_rejected_and_recorded(
    argo: ArgoEmulator, method: str, path: str, kwargs: dict[str, Any], reason: str
) -> None:
    response = await raw(argo, method, path, **kwargs)
    assert response.status_code == 400
    assert "contract violation" in response.json()["message"]
    assert len(argo.violations) == 1
    assert reason in argo.violations[0]
    argo.violations.clear()  # recorded on purpose; the fixture fails on any left over
    argo.requests.clear()


async def test_an_adapter_sending_a_wrong_shape_fails(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())

    def broken(spec: DeploymentSpec) -> dict[str, Any]:
        app = ArgoCDAdapter.application(adapter, spec)
        app["spec"]["source"]["helm"]["values"] = {"not": "a YAML string"}
        return app

    adapter.application = broken  # type: ignore[method-assign]
    with pytest.raises(InvalidInput, match="contract violation"):
        await adapter.create_deployment(spec(package, values={"a": 1}), ctx())
    assert argo.violations
    assert "$.spec.source.helm.values" in argo.violations[0]
    argo.violations.clear()


async def test_an_application_violating_the_crd_is_refused(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    await adapter.create_deployment(spec(package), ctx())
    # The CRD types what a JSON merge patch could break.
    response = await raw(
        argo,
        "PATCH",
        "/api/v1/applications/web",
        json={
            "name": "web",
            "project": "default",
            "patchType": "merge",
            "patch": '{"spec": {"revisionHistoryLimit": "ten"}}',
        },
    )
    assert response.status_code == 400
    assert "revisionHistoryLimit" in response.json()["message"]
    assert any("CRD" in v for v in argo.violations)
    argo.violations.clear()


async def test_responses_are_validated_too(argo: ArgoEmulator) -> None:
    # An emulator answer the real server could not give is caught as well.
    argo._check_response("GET", "/api/v1/applications/web", 200, {"metadata": {"nam": "x"}})
    assert argo.violations
    assert "response 200 body" in argo.violations[0]
    argo.violations.clear()


def test_entry_point_and_declared_capabilities() -> None:
    (ep,) = [e for e in entry_points(group="netweave.adapters") if e.name == "argocd"]
    assert ep.load() is ArgoCDAdapter
    info = ArgoCDAdapter.info()
    assert (info.type, info.distribution) == ("argocd", "netweave-argocd")
    assert info.version != "0+unknown"
    assert info.package_types == {"helm", "git-repo"}
    assert info.capabilities == {
        Capability.PACKAGE_MANAGEMENT,
        Capability.DEPLOYMENT_LIFECYCLE,
        Capability.ROLLBACK,
        Capability.SCALING,
        Capability.HISTORY,
        Capability.LOGS,
        Capability.GITOPS,
        Capability.DRIFT,  # GET …/diff from Argo CD's managed-resources
        Capability.PACKAGE_LISTING,
        Capability.DEPLOYMENT_UPDATE,
    }
    assert Capability.DRY_RUN not in info.capabilities  # no preview is implemented

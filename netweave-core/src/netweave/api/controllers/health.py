"""API info (``GET /o2dms/v1``), liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from netweave.__about__ import CONTRACT_VERSION, __version__
from netweave.api.common import API_PREFIX
from netweave.api.problems import build_problem
from netweave.api.schemas import ApiInfo, HealthView
from netweave.models import PROBLEM_MEDIA_TYPE
from netweave.services import Services


@get(API_PREFIX, operation_id="GetApiInfo", summary="API information", tags=["info"])
async def api_info(services: NamedDependency[Services]) -> ApiInfo:
    return ApiInfo(
        api_version="v1",
        base_path=API_PREFIX,
        gateway_version=__version__,
        contract_version=CONTRACT_VERSION,
        adapters=list(services.registry),
        resources=[
            "nfDeploymentDescriptors",
            "nfDeployments",
            "operations",
            "subscriptions",
            "adapters",
        ],
    )


@get("/healthz", operation_id="GetHealth", summary="Liveness", tags=["health"])
async def healthz() -> HealthView:
    return HealthView(status="ok")


@get(
    "/readyz",
    operation_id="GetReadiness",
    summary="Readiness: store reachable, adapters initialised",
    tags=["health"],
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    """Not coupled to any single backend's health: an adapter whose backend is down still lets
    the gateway serve everything else (``GET /o2dms/v1/adapters`` shows it)."""
    state = request.app.state
    services: Services | None = state.get("services")
    started = bool(state.get("adapters_started"))
    store_ok = services is not None and await services.store.ping()
    checks = {
        "store": "ok" if store_ok else "unreachable",
        "adapters": "initialised" if started else "starting",
        "adapterStartErrors": dict(state.get("adapter_start_errors", {})),
    }
    if store_ok and started:
        return Response(HealthView(status="ready", checks=checks))
    problem = build_problem(
        status=503,
        code="NotReady",
        title="Not ready",
        detail="the store is unreachable" if not store_ok else "adapters are still starting",
        instance="/readyz",
        details=checks,
    )
    return Response(
        problem, status_code=HTTP_503_SERVICE_UNAVAILABLE, media_type=PROBLEM_MEDIA_TYPE
    )


@get(
    "/metrics",
    operation_id="GetMetrics",
    summary="Prometheus metrics",
    tags=["health"],
    media_type=CONTENT_TYPE_LATEST,
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    services: Services | None = request.app.state.get("services")
    if services is not None:
        await services.packages.refresh_gauge()
        if services.notifications is not None:
            await services.notifications.worker.refresh_gauge()
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

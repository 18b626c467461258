"""``/o2dms/v1/nfDeployments``: deployments, their lifecycle tasks and read views."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from netweave.api.common import (
    API_PREFIX,
    JSON_BODY,
    PREVIEW_RESPONSE,
    AdapterFilter,
    DeploymentIdParam,
    IdempotencyKeyHeader,
    Limit,
    Offset,
    idempotent,
    model_response,
    problems,
    warning_header,
)
from netweave.models import (
    Deployment,
    DeploymentDiff,
    DeploymentList,
    DeploymentRequest,
    DeploymentStatus,
    DeploymentStatusReport,
    DeploymentUpdate,
    LogOptions,
    Operation,
    Preview,
    RevisionHistory,
    RollbackRequest,
    ScaleRequest,
)
from netweave.services import Accepted, Services

BASE = f"{API_PREFIX}/nfDeployments"
OPERATIONS = f"{API_PREFIX}/operations"
_log = logging.getLogger("netweave.api")


def _accepted_response(accepted: Accepted) -> Response[Any]:
    """202 with the operation; ``Location`` is the operation (ETSI op-occ style)."""
    operation = accepted.operation
    headers = {
        "Location": f"{OPERATIONS}/{operation.operation_id}",
        **warning_header(accepted.warnings),
    }
    return model_response(operation, HTTP_202_ACCEPTED, headers)


class DeploymentController(Controller):
    path = BASE
    tags = ["nfDeployments"]

    @get(operation_id="ListNfDeployments", summary="List deployments")
    async def list_deployments(
        self,
        services: NamedDependency[Services],
        package_id: Annotated[
            str | None, QueryParameter(name="packageId", required=False, max_length=300)
        ] = None,
        status: Annotated[DeploymentStatus | None, QueryParameter(required=False)] = None,
        namespace: Annotated[str | None, QueryParameter(required=False, max_length=63)] = None,
        adapter: AdapterFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> DeploymentList:
        """Deployments as last reconciled (``GET …/{id}`` asks the backend)."""
        return await services.deployments.query(
            package_id=package_id,
            status=status,
            namespace=namespace,
            adapter=adapter,
            limit=limit,
            offset=offset,
        )

    @post(
        operation_id="CreateNfDeployment",
        summary="Deploy a package (asynchronous); dryRun=true previews",
        status_code=HTTP_201_CREATED,
        opt=JSON_BODY,
        responses={**PREVIEW_RESPONSE, **problems(400, 404, 409, 415, 422, 501, 503)},
    )
    async def create_deployment(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        data: JSONBody[DeploymentRequest],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Deployment]:
        """201 with the deployment (status PENDING), ``Location`` and a ``Link`` to its
        operation; the work runs asynchronously. With ``dryRun: true``: 200 with the Preview,
        nothing stored."""

        async def produce() -> Response[Any]:
            result = await services.deployments.create(data)
            if isinstance(result, Preview):
                return model_response(result, HTTP_200_OK)
            deployment = result.deployment
            headers = {
                "Location": f"{BASE}/{deployment.deployment_id}",
                "Link": f'<{OPERATIONS}/{result.operation.operation_id}>; rel="operation"',
                **warning_header(result.warnings),
            }
            return model_response(deployment, HTTP_201_CREATED, headers)

        return await idempotent(request, services, idempotency_key, data, produce)

    @get("/{deploymentId:str}", operation_id="GetNfDeployment", summary="Get a deployment")
    async def get_deployment(
        self, services: NamedDependency[Services], deployment_id: DeploymentIdParam
    ) -> Deployment:
        """Reconciled with the backend: the owning adapter is asked for the current state."""
        return await services.deployments.get(deployment_id.lower())

    @put(
        "/{deploymentId:str}",
        operation_id="ReplaceNfDeployment",
        summary="Update a deployment: values replace the previous ones unless valuesMode=merge",
        status_code=HTTP_202_ACCEPTED,
        opt=JSON_BODY,
        responses=PREVIEW_RESPONSE,
    )
    async def put_deployment(
        self,
        services: NamedDependency[Services],
        deployment_id: DeploymentIdParam,
        data: JSONBody[DeploymentUpdate],
    ) -> Response[Operation]:
        """202 with the operation (``Location``); ``dryRun: true`` → 200 with the Preview."""
        result = await services.deployments.update(
            deployment_id.lower(), data, replace_by_default=True
        )
        if isinstance(result, Preview):
            return model_response(result, HTTP_200_OK)
        return _accepted_response(result)

    @patch(
        "/{deploymentId:str}",
        operation_id="UpdateNfDeployment",
        summary="Update a deployment: values merge unless valuesMode=replace",
        status_code=HTTP_202_ACCEPTED,
        opt=JSON_BODY,
        responses=PREVIEW_RESPONSE,
    )
    async def patch_deployment(
        self,
        services: NamedDependency[Services],
        deployment_id: DeploymentIdParam,
        data: JSONBody[DeploymentUpdate],
        dry_run: Annotated[
            bool | None,
            QueryParameter(
                query="dryRun",
                required=False,
                description="As the body's dryRun: preview the update and the diff it would "
                "apply against the live objects; nothing changes.",
            ),
        ] = None,
    ) -> Response[Operation]:
        """New values and/or a new ``packageId`` (upgrade). 202 with the operation."""
        if dry_run:
            data = data.model_copy(update={"dry_run": True})
        result = await services.deployments.update(deployment_id.lower(), data)
        if isinstance(result, Preview):
            return model_response(result, HTTP_200_OK)
        return _accepted_response(result)

    @delete(
        "/{deploymentId:str}",
        operation_id="DeleteNfDeployment",
        summary="Uninstall a deployment (asynchronous)",
        status_code=HTTP_202_ACCEPTED,
    )
    async def delete_deployment(
        self, services: NamedDependency[Services], deployment_id: DeploymentIdParam
    ) -> Response[Operation]:
        """202 with the operation; the record is gone once the uninstall succeeded."""
        return _accepted_response(await services.deployments.delete(deployment_id.lower()))

    @post(
        "/{deploymentId:str}/scale",
        operation_id="ScaleNfDeployment",
        summary="Scale a deployment",
        status_code=HTTP_202_ACCEPTED,
        opt=JSON_BODY,
    )
    async def scale_deployment(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        deployment_id: DeploymentIdParam,
        data: JSONBody[ScaleRequest],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """``{"replicas": n}`` (0 allowed). 501 when the adapter cannot scale."""

        async def produce() -> Response[Any]:
            accepted = await services.deployments.scale(deployment_id.lower(), data.replicas)
            return _accepted_response(accepted)

        return await idempotent(request, services, idempotency_key, data, produce)

    @post(
        "/{deploymentId:str}/rollback",
        operation_id="RollbackNfDeployment",
        summary="Roll a deployment back to a revision (0 or absent: the previous one)",
        status_code=HTTP_202_ACCEPTED,
        opt=JSON_BODY,
    )
    async def rollback_deployment(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        deployment_id: DeploymentIdParam,
        data: JSONBody[RollbackRequest],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """202 with the operation. 501 when the adapter cannot roll back."""

        async def produce() -> Response[Any]:
            accepted = await services.deployments.rollback(deployment_id.lower(), data.revision)
            return _accepted_response(accepted)

        return await idempotent(request, services, idempotency_key, data, produce)

    @get(
        "/{deploymentId:str}/status",
        operation_id="GetNfDeploymentStatus",
        summary="A deployment's status as the backend reports it",
    )
    async def get_status(
        self, services: NamedDependency[Services], deployment_id: DeploymentIdParam
    ) -> DeploymentStatusReport:
        return await services.deployments.status(deployment_id.lower())

    @get(
        "/{deploymentId:str}/diff",
        operation_id="GetNfDeploymentDiff",
        summary="Desired (the recorded revision) vs live objects, a unified diff per resource",
    )
    async def get_diff(
        self, services: NamedDependency[Services], deployment_id: DeploymentIdParam
    ) -> DeploymentDiff:
        """501 when the adapter cannot compare live objects (capability ``drift``)."""
        return await services.deployments.diff(deployment_id.lower())

    @post(
        "/{deploymentId:str}/reconcile",
        operation_id="ReconcileNfDeployment",
        summary="Repair: bring the backend back to the recorded package and values",
        status_code=HTTP_202_ACCEPTED,
    )
    async def reconcile_deployment(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        deployment_id: DeploymentIdParam,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """202 with a RECONCILE operation; COMPLETED only when the backend again holds the
        recorded state, ready and without drift (409 while another operation holds it)."""

        async def produce() -> Response[Any]:
            return _accepted_response(await services.deployments.repair(deployment_id.lower()))

        return await idempotent(request, services, idempotency_key, "reconcile", produce)

    @get(
        "/{deploymentId:str}/history",
        operation_id="GetNfDeploymentHistory",
        summary="A deployment's revisions",
    )
    async def get_history(
        self, services: NamedDependency[Services], deployment_id: DeploymentIdParam
    ) -> RevisionHistory:
        return await services.deployments.history(deployment_id.lower())

    @get(
        "/{deploymentId:str}/logs",
        operation_id="GetNfDeploymentLogs",
        summary="A deployment's logs (text, one line per line; follow=true streams)",
        media_type="text/plain",
    )
    async def get_logs(
        self,
        services: NamedDependency[Services],
        deployment_id: DeploymentIdParam,
        container: Annotated[str | None, QueryParameter(required=False, max_length=253)] = None,
        tail_lines: Annotated[
            int | None,
            QueryParameter(
                name="tailLines",
                required=False,
                ge=0,
                le=100_000,
                # Litestar drops a bound of 0 from the document (it tests the bound's truth).
                schema_extra={"minimum": 0},
            ),
        ] = None,
        since_seconds: Annotated[
            int | None, QueryParameter(name="sinceSeconds", required=False, ge=1, le=31_536_000)
        ] = None,
        follow: Annotated[bool, QueryParameter(required=False)] = False,
    ) -> Stream:
        options = LogOptions(
            container=container,
            tail_lines=tail_lines,
            since_seconds=since_seconds,
            follow=follow,
        )
        lines = await services.deployments.logs(deployment_id.lower(), options)
        # Pull the first line before answering, so an adapter error is still a problem body.
        iterator = lines.__aiter__()
        try:
            first: str | None = await iterator.__anext__()
        except StopAsyncIteration:
            first = None

        async def body() -> AsyncIterator[bytes]:
            if first is None:
                return
            yield _line(first)
            try:
                async for line in iterator:
                    yield _line(line)
            except Exception as exc:  # headers are sent: end the stream, say why in the log
                _log.warning("log stream of %s ended with %r", deployment_id, exc)

        return Stream(body(), media_type="text/plain; charset=utf-8")


def _line(text: str) -> bytes:
    return (text if text.endswith("\n") else text + "\n").encode()

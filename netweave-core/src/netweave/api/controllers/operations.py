"""``/o2dms/v1/operations``: operation occurrences and the ETSI tasks retry / rollback / fail /
cancel."""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from netweave.api.auth import SCOPE_ADMIN
from netweave.api.common import (
    API_PREFIX,
    IdempotencyKeyHeader,
    Limit,
    Offset,
    OperationIdParam,
    idempotent,
    model_response,
    problems,
)
from netweave.models import Operation, OperationList, OperationState
from netweave.services import Services
from netweave.services.occurrences import MAX_FOLLOW_SECONDS

#: RFC 7240's ``wait`` preference among a ``Prefer`` header's comma-separated preferences.
_WAIT = re.compile(r'(?:^|,)\s*wait\s*=\s*"?(\d{1,6})"?\s*(?:;[^,]*)?(?=,|$)', re.IGNORECASE)

PreferHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Prefer",
        required=False,
        max_length=1024,
        description="`wait=N` (RFC 7240): while the operation is under way (STARTING, "
        "PROCESSING, ROLLING_BACK), answer once it no longer is, or after N seconds "
        f"(at most {MAX_FOLLOW_SECONDS:g}) with its state then. The answer says "
        "`Preference-Applied: wait=N`. Other preferences are ignored.",
    ),
]


def wait_seconds(prefer: str | None) -> int | None:
    """The seconds of a ``Prefer: wait=N`` (capped), or None without one."""
    match = _WAIT.search(prefer) if prefer else None
    if match is None:
        return None
    return min(int(match.group(1)), int(MAX_FOLLOW_SECONDS))


class OperationController(Controller):
    path = f"{API_PREFIX}/operations"
    tags = ["operations"]

    @get(operation_id="ListOperations", summary="List operation occurrences")
    async def list_operations(
        self,
        services: NamedDependency[Services],
        deployment_id: Annotated[
            UUID | None, QueryParameter(name="deploymentId", required=False)
        ] = None,
        state_filter: Annotated[
            OperationState | None, QueryParameter(name="state", required=False)
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> OperationList:
        return await services.operations.query(
            deployment_id=str(deployment_id) if deployment_id else None,
            state=state_filter,
            limit=limit,
            offset=offset,
        )

    @get("/{operationId:str}", operation_id="GetOperation", summary="Get an operation")
    async def get_operation(
        self,
        services: NamedDependency[Services],
        operation_id: OperationIdParam,
        prefer: PreferHeader = None,
    ) -> Response[Operation]:
        """With ``Prefer: wait=N``, a client follows the operation without polling: the answer
        comes when the operation ends (or fails), or after N seconds."""
        wait = wait_seconds(prefer)
        if wait is None:
            return model_response(await services.operations.get(operation_id.lower()))
        operation = await services.operations.follow(operation_id.lower(), wait)
        return model_response(operation, headers={"Preference-Applied": f"wait={wait}"})

    @post(
        "/{operationId:str}/retry",
        operation_id="RetryOperation",
        summary="Retry a FAILED_TEMP operation",
        status_code=HTTP_202_ACCEPTED,
        responses=problems(404, 409),
    )
    async def retry(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        operation_id: OperationIdParam,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """Only from FAILED_TEMP (409 otherwise); the worker runs it again."""

        async def produce() -> Response[Any]:
            result = await services.operations.retry(operation_id.lower())
            return model_response(result, HTTP_202_ACCEPTED)

        return await idempotent(request, services, idempotency_key, "", produce)

    @post(
        "/{operationId:str}/rollback",
        operation_id="RollbackOperation",
        summary="Roll back a FAILED_TEMP operation (ROLLING_BACK → ROLLED_BACK)",
        status_code=HTTP_202_ACCEPTED,
        responses=problems(404, 409),
    )
    async def rollback(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        operation_id: OperationIdParam,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """Only from FAILED_TEMP, not for a DELETE (409 otherwise): the worker restores what the
        deployment was before the operation (uninstalled after a failed create; the prior
        revision, package and values after a failed change)."""

        async def produce() -> Response[Any]:
            result = await services.operations.rollback(operation_id.lower())
            return model_response(result, HTTP_202_ACCEPTED)

        return await idempotent(request, services, idempotency_key, "", produce)

    @post(
        "/{operationId:str}/fail",
        operation_id="FailOperation",
        summary="Give up a FAILED_TEMP operation (final FAILED)",
        status_code=HTTP_200_OK,
        opt={"scope": SCOPE_ADMIN},
        responses=problems(404, 409),
    )
    async def fail(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        operation_id: OperationIdParam,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """Only from FAILED_TEMP (409 otherwise). Needs ``o2dms:admin``."""

        async def produce() -> Response[Any]:
            result = await services.operations.fail(operation_id.lower())
            return model_response(result, HTTP_200_OK)

        return await idempotent(request, services, idempotency_key, "", produce)

    @post(
        "/{operationId:str}/cancel",
        operation_id="CancelOperation",
        summary="Cancel a STARTING or PROCESSING operation (→ FAILED_TEMP)",
        status_code=HTTP_202_ACCEPTED,
        opt={"scope": SCOPE_ADMIN},
        responses=problems(404, 409),
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        operation_id: OperationIdParam,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Operation]:
        """Only from STARTING or PROCESSING (409 otherwise). Needs ``o2dms:admin``."""

        async def produce() -> Response[Any]:
            result = await services.operations.cancel(operation_id.lower())
            return model_response(result, HTTP_202_ACCEPTED)

        return await idempotent(request, services, idempotency_key, "", produce)

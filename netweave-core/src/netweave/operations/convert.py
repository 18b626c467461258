"""Stored records → wire models (and back to what adapters receive)."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import msgspec

from netweave.adapters import PackageInfo
from netweave.models import (
    Deployment,
    DeploymentPackage,
    DriftReport,
    Operation,
    PackageState,
    ProblemDetails,
)
from netweave.store import DeploymentRecord, OperationRecord, PackageRecord

#: Private key of an operation's stored params: the id of the request that created it, so the
#: worker's lines carry it (never shown on the wire).
REQUEST_ID_PARAM = "_requestId"


def package_to_wire(record: PackageRecord, *, in_use: bool) -> DeploymentPackage:
    # IN_USE is derived (never stored): any deployment record referencing the package.
    state = PackageState.IN_USE if in_use else record.state
    return DeploymentPackage(
        package_id=record.package_id,
        name=record.name,
        artifact_name=record.artifact_name,
        artifact_version=record.version,
        description=record.description,
        provider=record.provider,
        package_type=record.package_type,
        package_uri=record.package_uri,
        checksum=record.checksum,
        state=state,
        adapter=record.adapter,
        created_at=record.created_at,
        updated_at=record.updated_at,
        extensions=record.extensions,
    )


_encode = msgspec.json.Encoder().encode


def _state_value(state: PackageState | str) -> str:
    # The record's state is a member when read from the store (no enum call per list row).
    return state.value if isinstance(state, PackageState) else PackageState(state).value


def _package_fields(record: PackageRecord, in_use: bool) -> dict[str, Any]:
    # DeploymentPackage's fields by alias, in its order (a test compares with pydantic's).
    return {
        "packageId": record.package_id,
        "name": record.name,
        "artifactName": record.artifact_name,
        "artifactVersion": record.version,
        "description": record.description,
        "provider": record.provider,
        "packageType": record.package_type,
        "packageUri": record.package_uri,
        "checksum": record.checksum,
        "state": PackageState.IN_USE.value if in_use else _state_value(record.state),
        "adapter": record.adapter,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "extensions": record.extensions,
    }


def package_json(record: PackageRecord, *, in_use: bool) -> bytes:
    """``package_to_wire(record, in_use=…)`` as JSON, encoded straight from the record: the
    same bytes as the model's ``model_dump_json(by_alias=True)`` for a fraction of the cost."""
    return _encode(_package_fields(record, in_use))


def package_json_parts(record: PackageRecord) -> tuple[bytes, bytes]:
    """``package_json`` split around its state value: ``head + state + tail`` is the view's
    JSON with ``state`` the state as a JSON string (the record's, or IN_USE, which only
    deployments decide). What the store keeps in each package's row (a test compares)."""
    fields = _package_fields(record, False)
    names = list(fields)
    at = names.index("state")
    head = _encode({name: fields[name] for name in names[:at]})
    tail = _encode({name: fields[name] for name in names[at + 1 :]})
    return head[:-1] + b',"state":', b"," + tail[1:]


#: Bumped when ``package_json`` changes its output without the model changing.
_PACKAGE_VIEW_VERSION = "1"


@functools.cache
def package_view_key() -> str:
    """Names the rendering of ``package_json_parts``: views stored under another key (by a
    netweave whose package model differed) are rendered again, not served."""
    schema = msgspec.json.encode(DeploymentPackage.model_json_schema(by_alias=True), order="sorted")
    digest = hashlib.sha256(schema).hexdigest()[:16]
    return f"{_PACKAGE_VIEW_VERSION}.{digest}"


def package_list_json(
    views: list[tuple[PackageRecord, bool]],
    *,
    total: int,
    limit: int,
    offset: int,
    marker: str | None,
) -> bytes:
    """A ``PackageList`` page as JSON, encoded straight from the records (see ``package_json``);
    ``nextpageOpaqueMarker`` only when another page follows."""
    page: dict[str, Any] = {
        "items": [_package_fields(record, in_use) for record, in_use in views],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
    if marker is not None:
        page["nextpageOpaqueMarker"] = marker
    return _encode(page)


def package_to_info(record: PackageRecord) -> PackageInfo:
    return PackageInfo(
        backend_ref=record.backend_ref,
        name=record.name,
        version=record.version,
        package_type=record.package_type,
        package_uri=record.package_uri,
        checksum=record.checksum,
        description=record.description,
        provider=record.provider,
        extensions=dict(record.extensions),
    )


def deployment_to_wire(record: DeploymentRecord) -> Deployment:
    return Deployment(
        deployment_id=record.deployment_id,
        name=record.name,
        namespace=record.namespace,
        package_id=record.package_id,
        package_version=record.package_version,
        resource_pool_id=record.resource_pool_id,
        status=record.status,
        status_message=record.status_message,
        revision=record.revision,
        values=record.values,
        adapter=record.adapter,
        created_at=record.created_at,
        updated_at=record.updated_at,
        extensions=record.extensions,
        drift_detected=bool(record.drift),
        drift=DriftReport.model_validate(record.drift) if record.drift else None,
    )


def operation_to_wire(record: OperationRecord) -> Operation:
    return Operation(
        operation_id=record.operation_id,
        operation_type=record.operation_type,
        deployment_id=record.deployment_id,
        adapter=record.adapter,
        state=record.state,
        start_time=record.start_time,
        state_entered_time=record.state_entered_time,
        is_cancel_pending=record.is_cancel_pending,
        attempts=record.attempts,
        params={k: v for k, v in record.params.items() if k != REQUEST_ID_PARAM},
        error=ProblemDetails.model_validate(record.error) if record.error else None,
    )


def wire_dict(model: Any) -> dict[str, Any]:
    """The JSON form (camelCase) handed to event hooks."""
    result: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return result


def error_to_problem(exc: Any, *, instance: str | None = None) -> ProblemDetails:
    """One mapping of the :mod:`netweave.errors` taxonomy onto RFC 9457 problem details."""
    from netweave.errors import NetweaveError

    if isinstance(exc, NetweaveError):
        return ProblemDetails(
            type=exc.problem_type,
            title=exc.title,
            status=exc.status,
            detail=exc.message,
            instance=instance,
            error=exc.code,
            message=exc.message,
            code=exc.status,
            details=exc.details or None,
        )
    # Never show an unexpected exception's text: it may carry internals.
    return ProblemDetails(
        type="urn:netweave:problem:InternalError",
        title="Internal error",
        status=500,
        detail="an unexpected error occurred; see the gateway's log",
        instance=instance,
        error="InternalError",
        message="an unexpected error occurred; see the gateway's log",
        code=500,
    )

"""``/o2dms/v1/nfDeploymentDescriptors``: deployment packages."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import pydantic
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from netweave.adapters import PackageUpload
from netweave.api.auth import SCOPE_ADMIN, UnsupportedMediaType, require_scope
from netweave.api.common import (
    API_PREFIX,
    JSON_BODY,
    AdapterFilter,
    IdempotencyKeyHeader,
    JsonBytes,
    Limit,
    Offset,
    PackageIdParam,
    Remember,
    idempotent_change,
    is_json,
    model_response,
    problems,
    sendable_headers,
    warning_header,
)
from netweave.api.problems import pydantic_problem
from netweave.api.uploads import receive_upload
from netweave.errors import InvalidInput, PayloadTooLarge
from netweave.models import (
    DeploymentPackage,
    PackageList,
    PackageRegistration,
    PackageState,
    PackageStateChange,
)
from netweave.models.packages import PACKAGE_NAME_PATTERN, VERSION_PATTERN
from netweave.services import Services
from netweave.services.packages import MARKER_PATTERN

BASE = f"{API_PREFIX}/nfDeploymentDescriptors"


class UploadForm(pydantic.BaseModel):
    """The multipart form's text fields, validated with the registration model's rules."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)

    name: str = pydantic.Field(pattern=PACKAGE_NAME_PATTERN, max_length=253)
    artifactVersion: str = pydantic.Field(pattern=VERSION_PATTERN, max_length=128)
    packageType: str | None = pydantic.Field(default=None, max_length=64)
    adapter: str | None = pydantic.Field(default=None, max_length=63)
    description: str | None = pydantic.Field(default=None, max_length=4096)
    provider: str | None = pydantic.Field(default=None, max_length=253)


class PackageController(Controller):
    path = BASE
    tags = ["nfDeploymentDescriptors"]

    @get(
        operation_id="ListNfDeploymentDescriptors",
        summary="List deployment packages",
        responses=problems(422),  # a well-formed nextpageOpaqueMarker the gateway never gave
    )
    async def list_packages(
        self,
        services: NamedDependency[Services],
        name: Annotated[str | None, QueryParameter(required=False, max_length=253)] = None,
        version: Annotated[str | None, QueryParameter(required=False, max_length=128)] = None,
        package_type: Annotated[
            str | None, QueryParameter(name="packageType", required=False, max_length=64)
        ] = None,
        adapter: AdapterFilter = None,
        state_filter: Annotated[
            PackageState | None, QueryParameter(name="state", required=False)
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
        marker: Annotated[
            str | None,
            QueryParameter(
                name="nextpageOpaqueMarker",
                required=False,
                min_length=4,
                max_length=1024,
                pattern=MARKER_PATTERN,
                description="The previous page's nextpageOpaqueMarker: this page starts after "
                "its last item (offset, if given, counts from there).",
            ),
        ] = None,
    ) -> Response[PackageList]:
        """Packages known to the gateway (including those the backends hold), with the total,
        in (name, version) order; follow ``nextpageOpaqueMarker`` for the next page."""
        body = await services.packages.query_json(
            name=name,
            version=version,
            package_type=package_type,
            adapter=adapter,
            state=state_filter,
            limit=limit,
            offset=offset,
            marker=marker,
        )
        return JsonBytes(body)

    @get("/{packageId:str}", operation_id="GetNfDeploymentDescriptor", summary="Get a package")
    async def get_package(
        self, services: NamedDependency[Services], package_id: PackageIdParam
    ) -> Response[DeploymentPackage]:
        """One package with its adapter's extensions (chart version, app version …)."""
        body = await services.packages.get_json(package_id)
        return JsonBytes(body)

    @post(
        operation_id="CreateNfDeploymentDescriptor",
        summary="Upload (multipart) or register (JSON, packageUri) a package",
        status_code=HTTP_201_CREATED,
        request_max_body_size=None,  # multipart is limited by api.maxUploadBytes, JSON below
        responses=problems(400, 409, 413, 415, 501, 502, 503, 504),
    )
    async def create_package(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[DeploymentPackage]:
        """``multipart/form-data`` with ``name``, ``artifactVersion``, the archive as ``chart`` or
        ``package`` and optional ``adapter``, ``packageType``, ``description``, ``provider``; or
        JSON (``PackageRegistration``) naming a ``packageUri``. 201 with ``Location``."""
        content_type = request.headers.get("content-type", "")
        settings = request.app.state.settings
        if content_type.lower().startswith("multipart/form-data"):
            received = await receive_upload(
                request,
                max_bytes=settings.api.max_upload_bytes,
                tmp_dir=Path(settings.data_dir) / "tmp",
                inspect=True,  # a chart's safety checks done as it arrives (uploads.py)
            )
            try:
                if received.archive is None:
                    raise InvalidInput(
                        "the archive part 'chart' (or 'package') is missing",
                        details={"field": "chart"},
                    )
                try:
                    form = UploadForm.model_validate(received.fields)
                except pydantic.ValidationError as exc:
                    raise pydantic_problem(exc) from None
                upload = PackageUpload(
                    name=form.name,
                    version=form.artifactVersion,
                    package_type=form.packageType,
                    description=form.description,
                    provider=form.provider,
                    archive=received.archive,
                    archive_size=received.size,
                    checksum=received.checksum,
                )
                digest = hashlib.sha256(
                    repr(sorted(received.fields.items())).encode()
                    + (received.checksum or "").encode()
                ).hexdigest()

                async def produce_upload(remember: Remember) -> Response[Any]:
                    return await self._onboard(services, upload, form.adapter, remember)

                return await idempotent_change(
                    request, services, idempotency_key, digest, produce_upload
                )
            finally:
                received.discard()
        if not is_json(content_type):
            raise UnsupportedMediaType(
                "send multipart/form-data (archive upload) or application/json (packageUri)",
                details={"header": "Content-Type"},
            )
        body = await _read_limited(request, settings.api.max_json_bytes)
        try:
            registration = PackageRegistration.model_validate_json(body)
        except pydantic.ValidationError as exc:
            raise pydantic_problem(exc) from None
        upload = PackageUpload(
            name=registration.name,
            version=registration.artifact_version,
            package_type=registration.package_type,
            description=registration.description,
            provider=registration.provider,
            package_uri=registration.package_uri,
            source=registration.source,
        )

        async def produce(remember: Remember) -> Response[Any]:
            return await self._onboard(services, upload, registration.adapter, remember)

        digest = hashlib.sha256(registration.model_dump_json().encode()).hexdigest()
        return await idempotent_change(request, services, idempotency_key, digest, produce)

    @staticmethod
    async def _onboard(
        services: Services, upload: PackageUpload, adapter: str | None, remember: Remember
    ) -> Response[Any]:
        answer: list[Response[Any]] = []

        async def finish(package: DeploymentPackage, warnings: tuple[str, ...]) -> None:
            # Built, checked and remembered inside the onboarding's transaction: an answer
            # that cannot be made or sent undoes the upload instead of leaving it stored.
            headers = {"Location": f"{BASE}/{package.package_id}", **warning_header(warnings)}
            sendable_headers(headers)
            response = model_response(package, HTTP_201_CREATED, headers)
            await remember(response)
            answer.append(response)

        await services.packages.onboard(upload, adapter, finish=finish)
        return answer[0]

    @patch(
        "/{packageId:str}",
        operation_id="UpdateNfDeploymentDescriptorState",
        summary="Deprecate or restore a package",
        opt=JSON_BODY,
    )
    async def change_state(
        self,
        services: NamedDependency[Services],
        package_id: PackageIdParam,
        data: JSONBody[PackageStateChange],
    ) -> DeploymentPackage:
        """``{"state": "DEPRECATED"}`` or ``{"state": "AVAILABLE"}``."""
        return await services.packages.set_state(package_id, PackageState(data.state))

    @delete(
        "/{packageId:str}",
        operation_id="DeleteNfDeploymentDescriptor",
        summary="Delete a package",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_package(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        package_id: PackageIdParam,
        force: Annotated[
            bool,
            QueryParameter(
                required=False,
                description="Delete even when deployments use it (needs o2dms:admin).",
            ),
        ] = False,
    ) -> None:
        """409 ``PackageInUse`` naming the deployments that use it, unless ``force=true``."""
        if force:
            require_scope(request, SCOPE_ADMIN)
        await services.packages.delete(package_id, force=force)


async def _read_limited(request: Request[Any, Any, Any], limit: int) -> bytes:
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise PayloadTooLarge(f"JSON bodies are limited to {limit} bytes", details={"limit": limit})
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(
                f"JSON bodies are limited to {limit} bytes", details={"limit": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)

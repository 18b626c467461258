"""``{apiRoot}/vnfpkgm/v2``: ETSI GS NFV-SOL 005 VNF package management (NFVO-facing), a face
over the native package store (HTTP → here → ``VnfPkgmService`` → ``PackageService`` → the
adapter). SOL013 conventions as on ``/vnflcm`` (``netweave.api.etsi.sol013``): the Version
header, filters, attribute selectors, paging, ProblemDetails. Scopes as on the native face:
``o2dms:read`` for GET, ``o2dms:write`` for changes. See docs/etsi.md, "VNF packages".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_206_PARTIAL_CONTENT,
)
from pydantic import Field, model_validator

from netweave.api.common import JSON_BODY
from netweave.api.etsi import sol013
from netweave.api.etsi.models import EtsiRequest
from netweave.api.etsi.vnflcm import (
    AllFieldsQuery,
    ExcludeDefaultQuery,
    ExcludeFieldsQuery,
    FieldsQuery,
    FilterQuery,
    MarkerQuery,
    _page,
    api_root,
    json_response,
)
from netweave.errors import Conflict, InvalidInput, NetweaveError, NotFound, PayloadTooLarge
from netweave.models.subscriptions import HTTP_URL_PATTERN
from netweave.packaging.csar import CsarStream, open_archive
from netweave.packaging.vnfd import Vnfd, to_sol001
from netweave.services import Services
from netweave.services.vnfpkgm import VnfPackageView, VnfPkgmService
from netweave.services.vnfpkgm_notify import API_VERSION  # SOL005 V3.7.1 vnfpkgm v2
from netweave.store.vnf import ColumnTerm

PREFIX = "/vnfpkgm/v2"
ZIP = "application/zip"
JSON_MEDIA = "application/json"
TEXT = "text/plain"
_CHUNK = 1 << 20

VNF_PKG_ATTRIBUTES = frozenset(
    {
        "id",
        "vnfdId",
        "vnfProvider",
        "vnfProductName",
        "vnfSoftwareVersion",
        "vnfdVersion",
        "compatibleSpecificationVersions",
        "checksum",
        "packageSecurityOption",
        "signingCertificate",
        "softwareImages",
        "additionalArtifacts",
        "onboardingState",
        "operationalState",
        "usageState",
        "vnfmInfo",
        "userDefinedData",
        "onboardingFailureDetails",
        "_links",
    }
)
#: SOL005 clause 9.4.2.3.2: excluded unless asked for.
VNF_PKG_DEFAULT_EXCLUDED = (
    "softwareImages",
    "additionalArtifacts",
    "userDefinedData",
    "checksum",
    "onboardingFailureDetails",
)
VNF_PKG_REQUIRED = frozenset({"id", "onboardingState", "operationalState", "usageState", "_links"})

VnfPkgIdParam = Annotated[str, PathParameter(name="vnfPkgId", min_length=1, max_length=300)]
VnfdIdParam = Annotated[str, PathParameter(name="vnfdId", min_length=1, max_length=300)]
ArtifactPathParam = Annotated[Path, PathParameter(name="artifactPath")]
IncludeSignatures = Annotated[str | None, QueryParameter(name="include_signatures", required=False)]


class CreateVnfPkgInfoRequest(EtsiRequest):
    user_defined_data: dict[str, Any] | None = None


class VnfPkgInfoModifications(EtsiRequest):
    operational_state: Literal["ENABLED", "DISABLED"] | None = None
    user_defined_data: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _something(self) -> VnfPkgInfoModifications:
        if self.operational_state is None and self.user_defined_data is None:
            raise ValueError("give operationalState and/or userDefinedData")
        return self


class UploadVnfPackageFromUriRequest(EtsiRequest):
    address_information: str = Field(min_length=1, max_length=4096)
    auth_type: str | None = None
    user_name: str | None = None
    password: str | None = None


def service(services: Services) -> VnfPkgmService:
    assert services.vnfpkgm is not None
    return services.vnfpkgm


def _etag(view: VnfPackageView) -> str:
    return f'"{view.etag}"'


def render_package(view: VnfPackageView, base: str) -> dict[str, Any]:
    """VnfPkgInfo (SOL005 clause 9.5.2.5)."""
    href = f"{base}/vnf_packages/{view.vnf_pkg_id}"
    body: dict[str, Any] = {"id": view.vnf_pkg_id}
    package = view.package
    content = (view.record.content if view.record is not None else None) or {}
    vnfd = (view.record.vnfd if view.record is not None else None) or None
    if view.onboarded and package is not None:
        if vnfd is not None:
            parsed = Vnfd.from_json(vnfd)
            body.update(
                vnfdId=parsed.vnfd_id,
                vnfProvider=parsed.provider,
                vnfProductName=parsed.product_name,
                vnfSoftwareVersion=parsed.software_version,
                vnfdVersion=parsed.vnfd_version,
            )
            vnfm_info = parsed.vnfm_info
        else:
            from netweave.packaging.vnfd import software_version

            body.update(
                vnfdId=package.package_id,
                vnfProvider=package.provider or "netweave",
                vnfProductName=package.name,
                vnfSoftwareVersion=software_version(
                    package.version, package.extensions.get("appVersion")
                ),
                vnfdVersion=package.version,
            )
            vnfm_info = ["netweave"]
        if content.get("signed"):
            # SOL004 security option 1 (the manifest and/or artifacts signed) or 2 (the whole
            # CSAR signed in an outer zip), verified.
            body["packageSecurityOption"] = content.get("securityOption") or "OPTION_1"
            if content.get("certificate"):
                body["signingCertificate"] = content["certificate"]
        if content.get("compatibleSpecificationVersions"):
            body["compatibleSpecificationVersions"] = content["compatibleSpecificationVersions"]
        checksum = content.get("checksum")
        if checksum is None and package.checksum and package.checksum.startswith("sha256:"):
            # A native package: the chart archive's digest (its content as stored).
            checksum = {"algorithm": "SHA-256", "hash": package.checksum.removeprefix("sha256:")}
        if checksum is not None:
            body["checksum"] = checksum
        body["softwareImages"] = []
        artifacts = content.get("artifacts")
        if artifacts is None:
            artifacts = _native_artifacts(package)
        body["additionalArtifacts"] = artifacts
        body["vnfmInfo"] = vnfm_info
    body["onboardingState"] = view.onboarding_state
    body["operationalState"] = view.operational_state
    body["usageState"] = view.usage_state
    user_data = view.record.user_defined_data if view.record is not None else {}
    if user_data:
        body["userDefinedData"] = user_data
    if view.record is not None and view.record.onboarding_failure is not None:
        body["onboardingFailureDetails"] = view.record.onboarding_failure
    body["_links"] = {
        "self": {"href": href},
        "vnfd": {"href": f"{href}/vnfd"},
        "packageContent": {"href": f"{href}/package_content"},
    }
    return body


def _native_artifacts(package: Any) -> list[dict[str, Any]]:
    """The chart of a native package, where the CSAR built from it holds it."""
    if not package.checksum or not str(package.checksum).startswith("sha256:"):
        return []
    return [
        {
            "artifactPath": f"Files/kubernetes/{package.name}-{package.version}.tgz",
            "checksum": {"algorithm": "SHA-256", "hash": package.checksum.removeprefix("sha256:")},
            "isEncrypted": False,
        }
    ]


def _accepts(accept: str | None, *media: str) -> str | None:
    """The first of ``media`` the Accept header allows (in its order of preference)."""
    if not accept:
        return media[0]
    allowed = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    for item in allowed:
        if item in {"*/*", "application/*"} and media[0].startswith("application/"):
            return media[0]
        if item == "*/*":
            return media[0]
        if item in media:
            return item
        if item == "text/*" and TEXT in media:
            return TEXT
    return None


def _not_acceptable(accept: str | None, *media: str) -> sol013.NotAcceptable:
    return sol013.NotAcceptable(
        f"this resource is served as {' or '.join(media)}, not {accept}",
        details={"header": "Accept"},
    )


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range (or ``a-``, ``-n``); None for the whole file; 416 when it
    cannot be satisfied."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise RangeNotSatisfiable(size, f"only one bytes range is served, not {header!r}")
    first, _, last = spec.strip().partition("-")
    try:
        if not first:
            length = int(last)
            if length <= 0:
                raise ValueError
            start, end = max(0, size - length), size - 1
        else:
            start = int(first)
            end = int(last) if last else size - 1
    except ValueError:
        raise RangeNotSatisfiable(size, f"malformed Range {header!r}") from None
    end = min(end, size - 1)
    if start < 0 or start > end or start >= size:
        raise RangeNotSatisfiable(size, f"Range {header!r} is outside the {size} bytes")
    return start, end


class RangeNotSatisfiable(NetweaveError):
    status = 416
    code = "RangeNotSatisfiable"
    title = "Range not satisfiable"

    def __init__(self, size: int, message: str) -> None:
        super().__init__(message, details={"header": "Range", "size": size})


async def _file_chunks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(handle.seek, start)
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(handle.read, min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def file_response(
    request: Request[Any, Any, Any], path: Path, media_type: str, *, ranges: bool = True
) -> Response[Any]:
    """The file, streamed (never whole in memory), with ``Range`` served when allowed."""
    size = (await asyncio.to_thread(path.stat)).st_size
    wanted = _parse_range(request.headers.get("range"), size) if ranges else None
    headers = {"Version": API_VERSION}
    if ranges:
        headers["Accept-Ranges"] = "bytes"
    if wanted is None:
        headers["Content-Length"] = str(size)
        return Stream(_file_chunks(path, 0, size), media_type=media_type, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return Stream(
        _file_chunks(path, start, end - start + 1),
        status_code=HTTP_206_PARTIAL_CONTENT,
        media_type=media_type,
        headers=headers,
    )


def _zip_of(csar: Path, names: list[str], tmp: Path) -> Path:
    """A zip of ``names`` from the CSAR, paths kept (members streamed, never whole)."""
    tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="vnfpkg-part-", suffix=".zip", dir=tmp)
    os.close(fd)
    target = Path(name)
    try:
        with open_archive(csar) as archive, zipfile.ZipFile(target, "w") as out:
            for member in names:
                info = zipfile.ZipInfo(member, (2000, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(member) as source, out.open(info, "w") as sink:
                    while chunk := source.read(_CHUNK):
                        sink.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


async def _temporary_file_response(
    request: Request[Any, Any, Any], path: Path, media_type: str
) -> Response[Any]:
    """Like :func:`file_response` for a file made for this answer: removed once sent."""
    size = (await asyncio.to_thread(path.stat)).st_size

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in _file_chunks(path, 0, size):
                yield chunk
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(path.unlink)

    return Stream(
        chunks(),
        media_type=media_type,
        headers={"Version": API_VERSION, "Content-Length": str(size)},
    )


async def _csar_members(csar: Path) -> list[str]:
    def names() -> list[str]:
        with open_archive(csar) as archive:
            return sorted(archive.files)

    return await asyncio.to_thread(names)


def _check_body(request: Request[Any, Any, Any], pkgm: VnfPkgmService) -> bool:
    """What the headers refuse before any byte is read (413, 415: nothing changes); True for
    ``multipart/form-data``."""
    limit = pkgm.max_upload_bytes
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit + 65536:
        raise PayloadTooLarge(
            f"the package is {announced} bytes; the limit is {limit}", details={"limit": limit}
        )
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        return True
    media = content_type.split(";", 1)[0].strip()
    if media not in {ZIP, "application/octet-stream", "application/gzip", "application/x-gzip"}:
        from netweave.api.auth import UnsupportedMediaType

        raise UnsupportedMediaType(
            f"send the package as application/zip (a CSAR) or application/gzip (a chart), "
            f"not {media or 'a body without Content-Type'}",
            details={"header": "Content-Type"},
        )
    return False


async def _receive_body(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, multipart: bool
) -> tuple[Path, str | None, CsarStream | None]:
    """The request body streamed to a temporary file (bounded by ``api.maxUploadBytes``);
    ``multipart/form-data`` with a ``file`` part is taken as well (what Tacker's clients send)."""
    limit = pkgm.max_upload_bytes
    if multipart:
        from netweave.api.uploads import receive_upload

        received = await receive_upload(request, max_bytes=limit, tmp_dir=pkgm.tmp_dir)
        if received.archive is None:
            raise InvalidInput("the multipart body has no package part", details={"field": "file"})
        checksum = (received.checksum or "").removeprefix("sha256:") or None
        return received.archive, checksum, None
    from netweave.api.uploads import _write_all

    await asyncio.to_thread(pkgm.tmp_dir.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="vnfpkg-", suffix=".upload", dir=pkgm.tmp_dir)
    target = Path(name)
    total = 0
    stream: CsarStream | None = None
    try:
        # Unbuffered, written on the loop as api.uploads does: a page-cache write of a body
        # chunk costs less than handing it to a thread (measured: 1 500 x 64 KiB, 0.02 s CPU
        # here vs 0.11-0.15 s through asyncio.to_thread); the stream reads what is written.
        with os.fdopen(fd, "wb", buffering=0) as sink:
            # A CSAR's chart is taken out on another thread as the body arrives (not after).
            stream = await asyncio.to_thread(pkgm.stream_csar, target)
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge(
                        f"the package exceeds the limit of {limit} bytes", details={"limit": limit}
                    )
                _write_all(sink, chunk)
                stream.wrote(total)
        stream.end()
        if total == 0:
            raise InvalidInput("the package content is empty", details={"field": "package"})
    except BaseException:
        target.unlink(missing_ok=True)  # noqa: ASYNC240  (one cheap syscall)
        if stream is not None:
            await asyncio.shield(asyncio.to_thread(stream.abandon))
        raise
    # No digest of the body here: the CSAR's own SHA-256 is read back while the adapter checks
    # its chart (VnfPkgmService._onboard_csar), not taken from the loop while the body arrives.
    return target, None, stream


class VnfPkgmController(Controller):
    path = PREFIX
    tags = ["vnfpkgm v2"]

    @staticmethod
    async def _check(request: Request[Any, Any, Any]) -> None:
        if request.method == "OPTIONS":
            return
        sol013.check_version(request.headers.get("version"), 2, API_VERSION)

    before_request = _check

    @staticmethod
    def _base(request: Request[Any, Any, Any]) -> str:
        return f"{api_root(request)}{PREFIX}"

    @staticmethod
    def _json_only(request: Request[Any, Any, Any]) -> None:
        if not sol013.accepts_json(request.headers.get("accept")):
            raise sol013.NotAcceptable(
                f"this resource answers application/json, not {request.headers.get('accept')}",
                details={"header": "Accept"},
            )

    # -- VNF packages ------------------------------------------------------------------------

    @post(
        "/vnf_packages",
        operation_id="VnfPkgmV2CreateVnfPackage",
        summary="Create a VNF package resource (CREATED, no content yet)",
        status_code=HTTP_201_CREATED,
        opt=JSON_BODY,
    )
    async def create_package(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        data: JSONBody[CreateVnfPkgInfoRequest],
    ) -> Response[bytes]:
        self._json_only(request)
        view = await service(services).create(data.user_defined_data or {})
        body = render_package(view, self._base(request))
        return json_response(
            body,
            HTTP_201_CREATED,
            {
                "Location": body["_links"]["self"]["href"],
                "ETag": _etag(view),
                "Version": API_VERSION,
            },
        )

    @get(
        "/vnf_packages",
        operation_id="VnfPkgmV2ListVnfPackages",
        summary="Query VNF packages (each native package is one; SOL013 filter, selectors, paging)",
    )
    async def list_packages(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        filter_: FilterQuery = None,
        all_fields: AllFieldsQuery = None,
        fields: FieldsQuery = None,
        exclude_fields: ExcludeFieldsQuery = None,
        exclude_default: ExcludeDefaultQuery = None,
        marker: MarkerQuery = None,
    ) -> Response[bytes]:
        self._json_only(request)
        return await _list(request, service(services), onboarded_only=False)

    @get(
        "/vnf_packages/{vnfPkgId:str}",
        operation_id="VnfPkgmV2GetVnfPackage",
        summary="Read a VNF package",
    )
    async def get_package(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
    ) -> Response[bytes]:
        self._json_only(request)
        view = await service(services).get(vnf_pkg_id)
        return json_response(
            render_package(view, self._base(request)),
            headers={"ETag": _etag(view), "Version": API_VERSION},
        )

    @patch(
        "/vnf_packages/{vnfPkgId:str}",
        operation_id="VnfPkgmV2ModifyVnfPackage",
        summary="Enable or disable a VNF package, change its userDefinedData (If-Match)",
        opt=JSON_BODY,
    )
    async def modify_package(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
        data: JSONBody[VnfPkgInfoModifications],
        if_match: Annotated[str | None, HeaderParameter(name="If-Match", required=False)] = None,
    ) -> Response[bytes]:
        self._json_only(request)
        expected = None
        if if_match is not None and if_match.strip() != "*":
            expected = if_match.strip().removeprefix("W/").strip('"')
        try:
            view = await service(services).modify(
                vnf_pkg_id, data.operational_state, data.user_defined_data, expected
            )
        except Conflict as exc:
            if expected is not None and "etag" in exc.details:
                raise sol013.PreconditionFailed(
                    f"If-Match {if_match} does not match the VNF package's ETag "
                    f'("{exc.details["etag"]}")',
                    details={"header": "If-Match"},
                ) from None
            raise
        body = data.model_dump(by_alias=True, exclude_none=True)
        return json_response(body, HTTP_200_OK, {"ETag": _etag(view), "Version": API_VERSION})

    @delete(
        "/vnf_packages/{vnfPkgId:str}",
        operation_id="VnfPkgmV2DeleteVnfPackage",
        summary="Delete a VNF package (409 while ENABLED or IN_USE)",
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_package(
        self, services: NamedDependency[Services], vnf_pkg_id: VnfPkgIdParam
    ) -> None:
        await service(services).delete(vnf_pkg_id)

    # -- content -----------------------------------------------------------------------------

    @put(
        "/vnf_packages/{vnfPkgId:str}/package_content",
        operation_id="VnfPkgmV2UploadVnfPackageContent",
        summary="Upload the package content: a SOL004 CSAR (application/zip) or a chart",
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=None,  # streamed to disk, bounded by api.maxUploadBytes
    )
    async def upload_content(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
    ) -> Response[bytes]:
        pkgm = service(services)
        multipart = _check_body(request, pkgm)
        # UPLOADING while the body arrives (409 to another upload or a DELETE meanwhile).
        async with pkgm.receiving(vnf_pkg_id):
            content, sha256, stream = await _receive_body(request, pkgm, multipart)
        try:
            await pkgm.upload(vnf_pkg_id, content, sha256, received=True, stream=stream)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(content.unlink)
        return Response(
            content=b"", status_code=HTTP_202_ACCEPTED, headers={"Version": API_VERSION}
        )

    @post(
        "/vnf_packages/{vnfPkgId:str}/package_content/upload_from_uri",
        operation_id="VnfPkgmV2UploadVnfPackageFromUri",
        summary="Fetch the package content from a URI (the gateway's fetch policy applies)",
        status_code=HTTP_202_ACCEPTED,
        opt=JSON_BODY,
    )
    async def upload_from_uri(
        self,
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
        data: JSONBody[UploadVnfPackageFromUriRequest],
    ) -> Response[bytes]:
        await service(services).upload_from_uri(
            vnf_pkg_id, data.address_information, data.user_name, data.password
        )
        return Response(
            content=b"", status_code=HTTP_202_ACCEPTED, headers={"Version": API_VERSION}
        )

    @get(
        "/vnf_packages/{vnfPkgId:str}/package_content",
        operation_id="VnfPkgmV2GetVnfPackageContent",
        summary="Download the package (a CSAR; Range served)",
    )
    async def get_content(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
    ) -> Response[Any]:
        pkgm = service(services)
        return await serve_content(request, pkgm, await pkgm.get(vnf_pkg_id))

    @get(
        "/vnf_packages/{vnfPkgId:str}/vnfd",
        operation_id="VnfPkgmV2GetVnfd",
        summary="The VNFD: text/plain when it is one file, else (or when asked) a zip",
    )
    async def get_vnfd(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
        include_signatures: IncludeSignatures = None,
    ) -> Response[Any]:
        pkgm = service(services)
        return await serve_vnfd(request, pkgm, await pkgm.get(vnf_pkg_id))

    @get(
        "/vnf_packages/{vnfPkgId:str}/manifest",
        operation_id="VnfPkgmV2GetManifest",
        summary="The package's manifest (text/plain; a zip with include_signatures)",
    )
    async def get_manifest(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
        include_signatures: IncludeSignatures = None,
    ) -> Response[Any]:
        pkgm = service(services)
        return await serve_manifest(request, pkgm, await pkgm.get(vnf_pkg_id))

    @get(
        "/vnf_packages/{vnfPkgId:str}/artifacts",
        operation_id="VnfPkgmV2GetArtifacts",
        summary="The package's additional artifacts in one zip (paths kept)",
    )
    async def get_artifacts(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
    ) -> Response[Any]:
        pkgm = service(services)
        return await serve_artifacts(request, pkgm, await pkgm.get(vnf_pkg_id))

    @get(
        "/vnf_packages/{vnfPkgId:str}/artifacts/{artifactPath:path}",
        operation_id="VnfPkgmV2GetArtifact",
        summary="One artifact of the package (Range served)",
    )
    async def get_artifact(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnf_pkg_id: VnfPkgIdParam,
        artifact_path: ArtifactPathParam,
    ) -> Response[Any]:
        pkgm = service(services)
        view = await pkgm.get(vnf_pkg_id)
        return await serve_artifact(request, pkgm, view, str(artifact_path))

    # -- SOL003 (VNFM-facing) reads by vnfdId ------------------------------------------------

    @get(
        "/onboarded_vnf_packages",
        operation_id="VnfPkgmV2ListOnboardedVnfPackages",
        summary="SOL003: the ONBOARDED VNF packages (SOL013 filter, selectors, paging)",
    )
    async def list_onboarded(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        filter_: FilterQuery = None,
        all_fields: AllFieldsQuery = None,
        fields: FieldsQuery = None,
        exclude_fields: ExcludeFieldsQuery = None,
        exclude_default: ExcludeDefaultQuery = None,
        marker: MarkerQuery = None,
    ) -> Response[bytes]:
        self._json_only(request)
        return await _list(request, service(services), onboarded_only=True)

    @get(
        "/onboarded_vnf_packages/{vnfdId:str}",
        operation_id="VnfPkgmV2GetOnboardedVnfPackage",
        summary="SOL003: the ONBOARDED VNF package of a vnfdId",
    )
    async def get_onboarded(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        vnfd_id: VnfdIdParam,
    ) -> Response[bytes]:
        self._json_only(request)
        view = await service(services).by_vnfd_id(vnfd_id)
        return json_response(
            render_package(view, self._base(request)),
            headers={"ETag": _etag(view), "Version": API_VERSION},
        )

    @get(
        "/onboarded_vnf_packages/{vnfdId:str}/package_content",
        operation_id="VnfPkgmV2GetOnboardedVnfPackageContent",
        summary="SOL003: the package of a vnfdId (a CSAR; Range served)",
    )
    async def get_onboarded_content(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services],
        vnfd_id: VnfdIdParam,
    ) -> Response[Any]:  # fmt: skip
        pkgm = service(services)
        return await serve_content(request, pkgm, await pkgm.by_vnfd_id(vnfd_id))

    @get(
        "/onboarded_vnf_packages/{vnfdId:str}/vnfd",
        operation_id="VnfPkgmV2GetOnboardedVnfd",
        summary="SOL003: the VNFD of a vnfdId",
    )
    async def get_onboarded_vnfd(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services],
        vnfd_id: VnfdIdParam, include_signatures: IncludeSignatures = None,
    ) -> Response[Any]:  # fmt: skip
        pkgm = service(services)
        return await serve_vnfd(request, pkgm, await pkgm.by_vnfd_id(vnfd_id))

    @get(
        "/onboarded_vnf_packages/{vnfdId:str}/manifest",
        operation_id="VnfPkgmV2GetOnboardedManifest",
        summary="SOL003: the manifest of a vnfdId's package",
    )
    async def get_onboarded_manifest(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services],
        vnfd_id: VnfdIdParam, include_signatures: IncludeSignatures = None,
    ) -> Response[Any]:  # fmt: skip
        pkgm = service(services)
        return await serve_manifest(request, pkgm, await pkgm.by_vnfd_id(vnfd_id))

    @get(
        "/onboarded_vnf_packages/{vnfdId:str}/artifacts",
        operation_id="VnfPkgmV2GetOnboardedArtifacts",
        summary="SOL003: the additional artifacts of a vnfdId's package in one zip",
    )
    async def get_onboarded_artifacts(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services],
        vnfd_id: VnfdIdParam,
    ) -> Response[Any]:  # fmt: skip
        pkgm = service(services)
        return await serve_artifacts(request, pkgm, await pkgm.by_vnfd_id(vnfd_id))

    @get(
        "/onboarded_vnf_packages/{vnfdId:str}/artifacts/{artifactPath:path}",
        operation_id="VnfPkgmV2GetOnboardedArtifact",
        summary="SOL003: one artifact of a vnfdId's package (Range served)",
    )
    async def get_onboarded_artifact(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services],
        vnfd_id: VnfdIdParam, artifact_path: ArtifactPathParam,
    ) -> Response[Any]:  # fmt: skip
        pkgm = service(services)
        view = await pkgm.by_vnfd_id(vnfd_id)
        return await serve_artifact(request, pkgm, view, str(artifact_path))


#: The VnfPkgInfo attributes a filter is pre-applied to in SQL (a superset: each package is
#: still checked exactly). ``vnfProductName``: a package with a row of its own may name its
#: product in its VNFD, so such rows are kept whatever their native name.
PAGE_COLUMNS = {
    "id": sol013.Column("vnf_pkg_id"),
    "vnfdId": sol013.Column("vnfd_id"),
    "onboardingState": sol013.Column("onboarding_state"),
    "vnfProductName": sol013.Column("name", or_present="kind"),
}


async def _list(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, *, onboarded_only: bool
) -> Response[bytes]:
    """A SOL013 list of VnfPkgInfo (``vnflcm``'s paging helper), read a page at a time from
    the store with the filter's simple terms pushed down, paged by nextpage_opaque_marker."""
    base = f"{api_root(request)}{PREFIX}"
    terms = sol013.parse_filter(request.query_params.get("filter"), VNF_PKG_ATTRIBUTES)
    where = sol013.pushdown(terms, PAGE_COLUMNS)
    if onboarded_only:
        where.append(ColumnTerm("onboarding_state", "in", ("ONBOARDED",)))

    async def fetch(after: Any, limit: int) -> list[VnfPackageView]:
        return await pkgm.page(after, limit, where)

    async def rendered(batch: list[Any]) -> list[dict[str, Any] | None]:
        return [
            render_package(v, base)
            if (v.record is not None or v.package is not None)
            and (v.onboarded or not onboarded_only)
            else None
            for v in batch
        ]

    response = await _page(
        request,
        fetch,
        lambda v: (v.created_at, v.vnf_pkg_id),
        rendered,
        VNF_PKG_ATTRIBUTES,
        VNF_PKG_DEFAULT_EXCLUDED,
        VNF_PKG_REQUIRED,
    )
    response.headers["Version"] = API_VERSION
    return response


async def serve_content(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, view: VnfPackageView
) -> Response[Any]:
    accept = request.headers.get("accept")
    if _accepts(accept, ZIP, "application/octet-stream") is None:
        raise _not_acceptable(accept, ZIP)
    return await file_response(request, await pkgm.content(view), ZIP)


async def serve_vnfd(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, view: VnfPackageView
) -> Response[Any]:
    accept = request.headers.get("accept")
    media = _accepts(accept, TEXT, ZIP)
    if media is None:
        raise _not_acceptable(accept, TEXT, ZIP)
    if media == TEXT and view.onboarded and not view.is_csar:
        # A generated VNFD is one file: no CSAR needs building to serve it.
        text = to_sol001(await pkgm.vnfd(view)).encode()
        return Response(content=text, media_type=TEXT, headers={"Version": API_VERSION})
    csar = await pkgm.csar(view)
    content = (view.record.content if view.record is not None else None) or {}
    files = list(content.get("vnfdFiles") or ["Definitions/vnfd.yaml"])
    if media == TEXT and "," in (accept or "") and len(files) > 1:
        media = ZIP  # both allowed: a VNFD of several files needs the zip
    if media == TEXT:
        if len(files) != 1:
            raise sol013.NotAcceptable(
                f"the VNFD is {len(files)} files: ask for application/zip",
                details={"header": "Accept"},
            )
        return await _member_response(request, csar, files[0], TEXT)
    names = files
    meta = "TOSCA-Metadata/TOSCA.meta"
    if meta in await _csar_members(csar):
        names = [meta, *files]
    part = await asyncio.to_thread(_zip_of, csar, names, pkgm.tmp_dir)
    return await _temporary_file_response(request, part, ZIP)


async def serve_manifest(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, view: VnfPackageView
) -> Response[Any]:
    accept = request.headers.get("accept")
    csar = await pkgm.csar(view)
    content = (view.record.content if view.record is not None else None) or {}
    manifest = str(content.get("manifest") or "vnfd.mf")
    if "include_signatures" in request.query_params:
        if _accepts(accept, ZIP) is None:
            raise _not_acceptable(accept, ZIP)
        part = await asyncio.to_thread(_zip_of, csar, [manifest], pkgm.tmp_dir)
        return await _temporary_file_response(request, part, ZIP)
    if _accepts(accept, TEXT) is None:
        raise _not_acceptable(accept, TEXT)
    return await _member_response(request, csar, manifest, TEXT)


async def serve_artifacts(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, view: VnfPackageView
) -> Response[Any]:
    accept = request.headers.get("accept")
    if _accepts(accept, ZIP) is None:
        raise _not_acceptable(accept, ZIP)
    csar = await pkgm.csar(view)
    names = [a["artifactPath"] for a in render_package(view, "")["additionalArtifacts"]]
    part = await asyncio.to_thread(_zip_of, csar, names, pkgm.tmp_dir)
    return await _temporary_file_response(request, part, ZIP)


async def serve_artifact(
    request: Request[Any, Any, Any], pkgm: VnfPkgmService, view: VnfPackageView, path: str
) -> Response[Any]:
    csar = await pkgm.csar(view)
    wanted = path.lstrip("/")
    listed = {a["artifactPath"] for a in render_package(view, "")["additionalArtifacts"]}
    if wanted not in listed:
        raise NotFound(
            f"VNF package {view.vnf_pkg_id} has no artifact {wanted!r}",
            details={"artifactPath": wanted},
        )
    accept = request.headers.get("accept")
    media = "application/gzip" if wanted.endswith((".tgz", ".gz")) else "application/octet-stream"
    if _accepts(accept, media, "application/octet-stream") is None:
        raise _not_acceptable(accept, media)
    return await _member_response(request, csar, wanted, media)


async def _member_response(
    request: Request[Any, Any, Any], csar: Path, member: str, media_type: str
) -> Response[Any]:
    """One member of the CSAR, extracted to a temporary file then streamed (Range served)."""
    tmp = request.app.state.services.vnfpkgm.tmp_dir

    def extract() -> Path:
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="vnfpkg-member-", dir=tmp)
        os.close(fd)
        target = Path(name)
        try:
            with open_archive(csar) as archive:
                archive.extract(member, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    path = await asyncio.to_thread(extract)
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
        wanted = _parse_range(request.headers.get("range"), size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    start, end = wanted if wanted is not None else (0, size - 1)
    length = max(0, end - start + 1)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in _file_chunks(path, start, length):
                yield chunk
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(path.unlink)

    headers = {"Version": API_VERSION, "Accept-Ranges": "bytes", "Content-Length": str(length)}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Stream(
        chunks(),
        status_code=HTTP_206_PARTIAL_CONTENT if wanted is not None else HTTP_200_OK,
        media_type=media_type,
        headers=headers,
    )


def api_versions_handlers() -> list[Any]:
    """``/vnfpkgm/api_versions`` and ``/vnfpkgm/v2/api_versions`` (no Version header)."""

    def answer(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = {
            "uriPrefix": f"{api_root(request)}{PREFIX}",
            "apiVersions": [{"version": API_VERSION}],
        }
        return json_response(body, headers={"Version": API_VERSION})

    @get(
        "/vnfpkgm/api_versions",
        operation_id="VnfPkgmApiVersions",
        summary="API versions of vnfpkgm",
        tags=["vnfpkgm v2"],
    )
    async def versions(request: Request[Any, Any, Any]) -> Response[bytes]:
        return answer(request)

    @get(
        "/vnfpkgm/v2/api_versions",
        operation_id="VnfPkgmV2ApiVersions",
        summary="API versions of vnfpkgm (v2)",
        tags=["vnfpkgm v2"],
    )
    async def versions_v2(request: Request[Any, Any, Any]) -> Response[bytes]:
        return answer(request)

    return [versions, versions_v2]


_OBJECT: dict[str, Any] = {"type": "object"}
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
_TEXT: dict[str, Any] = {"type": "string"}


def _content_of(path: str) -> dict[str, Any] | None:
    """The media types of a route serving package content (not JSON), by its last segment."""
    if path.endswith("/package_content"):
        return {ZIP: {"schema": _BINARY}}
    if path.endswith(("/vnfd", "/manifest")):
        return {TEXT: {"schema": _TEXT}, ZIP: {"schema": _BINARY}}
    if path.endswith("/artifacts"):
        return {ZIP: {"schema": _BINARY}}
    if path.endswith("/{artifactPath}"):
        return {
            "application/gzip": {"schema": _BINARY},
            "application/octet-stream": {"schema": _BINARY},
        }
    return None


#: What the request bodies must hold beyond their types (each refusal is a 400 otherwise),
#: by (method, last path segment): stated as an ``allOf`` beside the body's schema.
_BODY_RULES: dict[tuple[str, str], dict[str, Any]] = {
    # An absolute http(s) URL with a host (its address is checked next: refused → 422).
    ("post", "subscriptions"): {
        "properties": {"callbackUri": {"type": "string", "pattern": HTTP_URL_PATTERN}}
    },
    # A modification names at least one attribute (not null).
    ("patch", "{vnfPkgId}"): {
        "anyOf": [{"required": ["operationalState"]}, {"required": ["userDefinedData"]}],
        "properties": {
            "operationalState": {"type": "string"},
            "userDefinedData": {"type": "object"},
        },
    },
}


def _document_grammar(path: str, operation: dict[str, Any]) -> None:
    """The SOL013 list parameters' grammar over the resource's attributes (what the face
    parses: anything else is a 400)."""
    if path.endswith("/subscriptions"):
        from netweave.api.etsi.vnfpkgm_subscriptions import SUBSCRIPTION_ATTRIBUTES

        attributes, required = SUBSCRIPTION_ATTRIBUTES, SUBSCRIPTION_ATTRIBUTES
    else:
        attributes, required = VNF_PKG_ATTRIBUTES, VNF_PKG_REQUIRED
    excludable = attributes - required
    grammar = {
        "filter": {"type": "string", "maxLength": 4096,
                   "pattern": sol013.filter_pattern(attributes)},
        "fields": {"type": "string", "pattern": sol013.fields_pattern(attributes)},
        "exclude_fields": (
            {"type": "string", "pattern": sol013.fields_pattern(excludable)}
            if excludable else {"type": "string", "not": {}}
        ),
    }  # fmt: skip
    for parameter in operation.get("parameters") or ():
        name = parameter.get("name")
        if parameter.get("in") == "query" and name in grammar:
            parameter["schema"] = grammar[name]
            if name != "filter":
                parameter["description"] = (
                    f"{parameter.get('description') or name}. Attribute selectors combine only "
                    "as SOL013 allows: all_fields alone, fields with or without exclude_default, "
                    "exclude_fields alone, exclude_default alone (else 400)."
                )


def document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    """State this face's success answers in the OpenAPI document (the handlers return bytes
    or streams, which Litestar documents as a JSON string): VnfPkgInfo, PkgmSubscription and
    ApiVersionInformation objects, arrays for the lists, the content routes' own media types
    (206 with ``Range`` where served), no body on 202/204."""
    responses = operation.setdefault("responses", {})
    lists = method == "get" and path.endswith(
        ("/vnf_packages", "/onboarded_vnf_packages", "/subscriptions")
    )
    content = _content_of(path) if method == "get" else None
    for status in ("200", "201"):
        if status not in responses:
            continue
        if content is not None:
            responses[status]["content"] = content
        else:
            schema = {"type": "array", "items": _OBJECT} if lists else _OBJECT
            responses[status]["content"] = {JSON_MEDIA: {"schema": schema}}
    if content is not None and (
        path.endswith(("/package_content", "/{artifactPath}")) and "200" in responses
    ):
        responses["206"] = {
            "description": "The byte range asked for (Range)",
            "content": content,
        }
    for status in ("202", "204"):
        if status in responses:
            responses[status].pop("content", None)
    if lists:
        _document_grammar(path, operation)
    rule = _BODY_RULES.get((method, path.rsplit("/", 1)[-1]))
    body = (operation.get("requestBody") or {}).get("content", {}).get(JSON_MEDIA)
    if rule is not None and body is not None and "schema" in body:
        body["schema"] = {"allOf": [body["schema"], rule]}
    if method == "put" and path.endswith("/package_content"):
        binary = {"schema": _BINARY}
        operation["requestBody"] = {
            "description": "A SOL004 CSAR (zip) or a bare Helm chart (.tgz), or either as the "
            "file part of a multipart form; at most api.maxUploadBytes",
            "required": True,
            "content": {
                ZIP: binary,
                "application/gzip": binary,
                "application/octet-stream": binary,
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": _BINARY}}
                },
            },
        }


#: For ``netweave.api.openapi.ERRORS_BY_OPERATION``.
VNFPKGM_ERRORS: dict[str, tuple[int, ...]] = {
    "VnfPkgmApiVersions": (),
    "VnfPkgmV2ApiVersions": (),
    "VnfPkgmV2CreateVnfPackage": (406,),
    "VnfPkgmV2ListVnfPackages": (400, 406, 503),
    "VnfPkgmV2GetVnfPackage": (406,),
    "VnfPkgmV2ModifyVnfPackage": (406, 409, 412),
    "VnfPkgmV2DeleteVnfPackage": (406, 409, 502, 503, 504),
    "VnfPkgmV2UploadVnfPackageContent": (406, 409, 413, 502, 503, 504),
    "VnfPkgmV2UploadVnfPackageFromUri": (406, 409, 422, 502, 503, 504),
    "VnfPkgmV2GetVnfPackageContent": (406, 409, 416, 502, 503, 504),
    "VnfPkgmV2GetVnfd": (406, 409, 502, 503, 504),
    "VnfPkgmV2GetManifest": (406, 409, 502, 503, 504),
    "VnfPkgmV2GetArtifacts": (406, 409, 502, 503, 504),
    "VnfPkgmV2GetArtifact": (406, 409, 416, 502, 503, 504),
    "VnfPkgmV2ListOnboardedVnfPackages": (400, 406, 503),
    "VnfPkgmV2GetOnboardedVnfPackage": (406,),
    "VnfPkgmV2GetOnboardedVnfPackageContent": (406, 416, 502, 503, 504),
    "VnfPkgmV2GetOnboardedVnfd": (406, 502, 503, 504),
    "VnfPkgmV2GetOnboardedManifest": (406, 502, 503, 504),
    "VnfPkgmV2GetOnboardedArtifacts": (406, 502, 503, 504),
    "VnfPkgmV2GetOnboardedArtifact": (406, 416, 502, 503, 504),
    # netweave.api.etsi.vnfpkgm_subscriptions: a callback refused or failing its test: 422.
    "VnfPkgmV2CreateSubscription": (406, 422),
    "VnfPkgmV2ListSubscriptions": (400, 406),
    "VnfPkgmV2GetSubscription": (406,),
    "VnfPkgmV2DeleteSubscription": (406,),
}

__all__ = [
    "API_VERSION",
    "VNFPKGM_ERRORS",
    "VnfPkgmController",
    "api_versions_handlers",
    "document_operation",
    "render_package",
]

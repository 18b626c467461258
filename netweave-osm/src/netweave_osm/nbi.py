"""The OSM NBI client: token login as an ``httpx.Auth`` flow, JSON only, NBI errors mapped.

Built on core's :class:`netweave.adapters.http.BackendClient` (TLS, timeouts, retries of
idempotent calls). The NBI answers YAML unless asked otherwise, so every request carries
``Accept: application/json``; its error bodies are ``{code, status, detail}``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterable, Callable
from typing import Any

import httpx
from netweave.adapters.http import (
    BackendClient,
    BearerToken,
    HttpSettings,
    RefreshingBearerAuth,
)
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    InUse,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from pydantic import SecretStr

_log = logging.getLogger("netweave_osm.nbi")
JSON = "application/json"
BACKEND = "OSM NBI"
#: Path suffixes of the package collections; a 409 on them means "exists" or "in use".
_PACKAGE_COLLECTIONS = ("/vnf_packages_content", "/ns_descriptors_content")


def nbi_detail(response: httpx.Response) -> str:
    """The ``detail`` of an NBI error body, or a short text of whatever came back."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return " ".join(str(body["detail"]).split())[:500]
    try:
        text = " ".join(response.text.split())[:300]
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        text = ""
    return text or f"HTTP {response.status_code}"


def map_nbi_error(response: httpx.Response) -> NetweaveError:
    """NBI error response → the core taxonomy (backends.md §3.2)."""
    status = response.status_code
    detail = nbi_detail(response)
    details: dict[str, Any] = {"backend": "osm", "backendStatus": status}
    try:
        method, path = response.request.method, response.request.url.path
    except RuntimeError:  # a response built without a request (tests)
        method, path = "", ""
    collection = next((c for c in _PACKAGE_COLLECTIONS if c in path), None)
    if status == 404:
        return NotFound(f"OSM: {detail}", details=details)
    if status == 409:
        if collection and method == "DELETE":
            return InUse(f"OSM refuses to delete the package: {detail}", details=details)
        if collection and method == "POST" and "already exists" in detail.lower():
            return AlreadyExists(f"OSM already has this descriptor: {detail}", details=details)
        return Conflict(f"OSM: {detail}", details=details)
    if status in (400, 422):
        return InvalidInput(f"OSM refused the request: {detail}", details=details)
    if status == 401:
        return BackendError(
            "OSM NBI refused the gateway's token even after a fresh login; check the adapter's "
            "username, password and project",
            details=details,
        )
    if status == 403:
        return BackendError(
            f"OSM NBI does not permit this to the configured user/project: {detail}",
            details=details,
        )
    if status in (502, 503, 504):
        return BackendUnavailable(f"OSM NBI is unavailable (HTTP {status})", details=details)
    return BackendError(f"OSM NBI failed (HTTP {status}): {detail}", details=details)


class TokenAuth(RefreshingBearerAuth):
    """Bearer token from ``POST /admin/v1/tokens``; core's refreshing flow renews it before
    ``expires`` and on a 401. The project the NBI scoped it to is kept beside it."""

    def __init__(
        self,
        token_url: str,
        username: str,
        password: SecretStr,
        project: str,
        *,
        renew_margin: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(margin=renew_margin, clock=clock)
        self._token_url = token_url
        self._username = username
        self._password = password
        self._project = project
        self.project_id: str | None = None

    def _login_request(self, request: httpx.Request) -> httpx.Request:
        body = {
            "username": self._username,
            "password": self._password.get_secret_value(),
            "project_id": self._project,
        }
        return httpx.Request(
            "POST",
            self._token_url,
            content=json.dumps(body).encode(),
            headers={"Accept": JSON, "Content-Type": JSON},
        )

    def _read_token(self, response: httpx.Response) -> BearerToken:
        status = response.status_code
        if status in (401, 403):
            raise BackendError(
                f"OSM NBI refused the credentials of user {self._username!r} for project "
                f"{self._project!r}: {nbi_detail(response)}",
                details={"backend": "osm", "backendStatus": status},
            )
        if status >= 500:
            raise BackendUnavailable(
                f"OSM NBI could not issue a token (HTTP {status})",
                details={"backend": "osm", "backendStatus": status},
            )
        if status not in (200, 201):
            raise BackendError(f"OSM NBI token request failed (HTTP {status})")
        body = _json_body(response)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise BackendError("OSM NBI answered the token request without a token id")
        expires = body.get("expires")
        project = body.get("project_id")
        self.project_id = project if isinstance(project, str) else None
        return BearerToken(body["id"], float(expires) if isinstance(expires, int | float) else None)


def _json_body(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise BackendError(
            f"OSM NBI answered {content_type or 'no content type'} instead of JSON",
            details={"backend": "osm"},
        )
    try:
        return response.json()
    except ValueError as exc:
        raise BackendError("OSM NBI answered malformed JSON", details={"backend": "osm"}) from exc


class NbiClient:
    """Thin typed calls on the NBI; paths are relative to ``<nbiUrl><basePath>``."""

    def __init__(
        self,
        api_root: str,
        *,
        username: str,
        password: SecretStr,
        project: str,
        settings: HttpSettings,
        renew_margin: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.auth = TokenAuth(
            f"{api_root}/admin/v1/tokens",
            username,
            password,
            project,
            renew_margin=renew_margin,
        )
        self.http = BackendClient(
            api_root,
            backend=BACKEND,
            settings=settings,
            auth=self.auth,
            headers={"Accept": JSON},
            error_mapper=map_nbi_error,
            transport=transport,
        )

    async def aclose(self) -> None:
        token = self.auth.token
        if token is not None:
            # Give the token back; a failure here must not stop a shutdown.
            try:
                await self.http.client.delete(f"/admin/v1/tokens/{token.value}")
            except httpx.HTTPError as exc:
                _log.debug("OSM token logout failed: %s", type(exc).__name__)
        await self.http.aclose()

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = await self.http.request("GET", path, params=params, expected=(200,))
        return _json_body(response)

    async def post(
        self, path: str, body: dict[str, Any], *, expected: tuple[int, ...] = (200, 201, 202)
    ) -> tuple[Any, httpx.Response]:
        response = await self.http.request(
            "POST",
            path,
            content=json.dumps(body).encode(),
            headers={"Content-Type": JSON},
            expected=expected,
        )
        return _json_body(response), response

    async def upload(
        self,
        path: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        filename: str,
        md5: str,
    ) -> Any:
        response = await self.http.request(
            "POST",
            path,
            content=chunks,
            headers={
                "Content-Type": content_type,
                "Content-Filename": filename,
                "Content-File-MD5": md5,
            },
            expected=(200, 201),
        )
        return _json_body(response)

    async def delete(
        self, path: str, *, params: dict[str, str] | None = None
    ) -> tuple[Any, httpx.Response]:
        response = await self.http.request("DELETE", path, params=params, expected=(200, 202, 204))
        return _json_body(response), response


__all__ = ["NbiClient", "TokenAuth", "map_nbi_error", "nbi_detail"]

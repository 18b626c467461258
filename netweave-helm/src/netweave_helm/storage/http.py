"""Helm HTTP repositories: read-only ones (``index.yaml``) and ChartMuseum (its ``/api``).

ChartMuseum (v0.16 API): ``GET /api/charts`` → ``{name: [ChartVersion]}``, ``POST /api/charts``
(multipart field ``chart``) → 201 ``{"saved": true}`` or 409 ``{"error": …}``,
``DELETE /api/charts/<name>/<version>`` → 200 ``{"deleted": true}``, archives under
``/charts/<file>.tgz``; with ``--depth`` the paths carry a tenant prefix
(``/api/<tenant>/charts``, ``/<tenant>/index.yaml``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import yaml
from netweave.adapters.http import BackendClient
from netweave.errors import AlreadyExists, BackendError, NetweaveError, NotFound

from netweave_helm.config import ChartMuseumStorage, HttpStorage
from netweave_helm.storage.base import ChartEntry, ChartListing, ChartStore, Skip
from netweave_helm.storage.remote import basic_or_token, download, make_client

_BOOKKEEPING = ("urls", "created", "digest", "removed", "checksum", "url")
#: index.yaml of a remote repository may be big but not unbounded.
_MAX_INDEX_BYTES = 64 * 1024 * 1024


def entries_from_index(index: Any, base_url: str) -> list[ChartEntry]:
    """Chart entries of a parsed ``index.yaml`` (or ChartMuseum ``/api/charts``) document."""
    if isinstance(index, dict) and "entries" in index:
        index = index.get("entries")
    if not isinstance(index, dict):
        raise BackendError(f"{base_url}: the repository index is not a mapping of charts")
    entries: list[ChartEntry] = []
    for name, versions in sorted(index.items()):
        if not isinstance(versions, list):
            continue
        for item in versions:
            if not isinstance(item, dict) or item.get("removed") or "version" not in item:
                continue
            urls = [str(u) for u in item.get("urls") or []]
            uri = urljoin(base_url.rstrip("/") + "/", urls[0]) if urls else None
            digest = item.get("digest")
            entries.append(
                ChartEntry(
                    name=str(item.get("name", name)),
                    version=str(item["version"]),
                    metadata={k: v for k, v in item.items() if k not in _BOOKKEEPING},
                    digest=f"sha256:{str(digest).removeprefix('sha256:')}" if digest else None,
                    uri=uri,
                    created=str(item["created"]) if item.get("created") else None,
                )
            )
    return entries


def _parse_yaml(content: bytes, backend: str) -> Any:
    try:
        return yaml.load(content, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise BackendError(f"{backend}: the index is not valid YAML") from exc


def _parse_json(content: bytes, backend: str) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise BackendError(f"{backend}: the chart list is not valid JSON") from exc


class ConditionalIndex:
    """A remote index read with conditional requests and parsed once per change.

    ``If-None-Match``/``If-Modified-Since`` from the last answer: a 304 reuses the parsed
    entries; a 200 whose body hashes like the last one (a server without validators) does too.
    The body's hash is the listing token, so an unchanged index lists nothing new.
    """

    def __init__(self, path: str, base_url: str, parse: Callable[[bytes, str], Any]) -> None:
        self.path = path
        self.base_url = base_url
        self._parse = parse
        self._etag: str | None = None
        self._last_modified: str | None = None
        self.digest: str | None = None
        self.entries: list[ChartEntry] = []
        #: How many times the body was parsed (a change, or the first read).
        self.parses = 0

    async def read(self, client: BackendClient) -> list[ChartEntry]:
        headers: dict[str, str] = {}
        if self.digest is not None:
            if self._etag:
                headers["If-None-Match"] = self._etag
            if self._last_modified:
                headers["If-Modified-Since"] = self._last_modified
        response = await client.request("GET", self.path, expected=(200, 304), headers=headers)
        if response.status_code == 304 and self.digest is not None:
            return self.entries
        content = response.content
        if len(content) > _MAX_INDEX_BYTES:
            raise BackendError(
                f"{client.backend}: the index is larger than {_MAX_INDEX_BYTES} bytes"
            )
        digest = hashlib.blake2b(content, digest_size=16).hexdigest()
        if digest != self.digest:
            self.entries = entries_from_index(self._parse(content, client.backend), self.base_url)
            self.digest = digest
            self.parses += 1
        self._etag = response.headers.get("ETag")
        self._last_modified = response.headers.get("Last-Modified")
        return self.entries

    async def listing_since(
        self, client: BackendClient, token: str | None, skip: Skip | None = None
    ) -> ChartListing:
        entries = await self.read(client)
        if token is not None and token == self.digest:
            return ChartListing(self.digest, [], complete=False)
        if skip is not None:
            return ChartListing(
                self.digest, [e for e in entries if not skip(e.name, e.version)], complete=True
            )
        return ChartListing(self.digest, list(entries), complete=True)


class HttpChartStore(ChartStore):
    """A read-only classic Helm repository."""

    kind = "http"
    read_only = True

    def __init__(self, settings: HttpStorage, *, timeout: float, max_bytes: int) -> None:
        self.settings = settings
        self._max_bytes = max_bytes
        self._http = make_client(
            settings.url + "/",
            f"Helm repository {settings.url}",
            settings,
            timeout,
            auth=basic_or_token(settings),
        )
        self._index = ConditionalIndex("index.yaml", settings.url, _parse_yaml)

    @property
    def location(self) -> str:
        return self.settings.url

    async def close(self) -> None:
        await self._http.aclose()

    async def list_charts(self) -> list[ChartEntry]:
        return list(await self._index.read(self._http))

    async def listing_since(self, token: str | None, skip: Skip | None = None) -> ChartListing:
        return await self._index.listing_since(self._http, token, skip)

    async def fetch(self, name: str, version: str, directory: Path) -> Path:
        entry = await self.get(name, version)
        if entry.uri is None:
            raise BackendError(f"{self.location}: chart {name}:{version} has no download URL")
        return await download(
            self._http,
            entry.uri,
            directory,
            f"{name}-{version}.tgz",
            max_bytes=self._max_bytes,
            expect_digest=entry.digest,
        )


class ChartMuseumStore(ChartStore):
    kind = "chartmuseum"

    def __init__(self, settings: ChartMuseumStorage, *, timeout: float, max_bytes: int) -> None:
        self.settings = settings
        self._max_bytes = max_bytes
        tenant = f"{settings.tenant}/" if settings.tenant else ""
        self._api = f"api/{tenant}charts"
        self._repo_base = f"{settings.url}/{tenant}"
        self._http = make_client(
            settings.url + "/",
            f"ChartMuseum {settings.url}",
            settings,
            timeout,
            auth=basic_or_token(settings),
        )
        self._index = ConditionalIndex(self._api, self._repo_base, _parse_json)

    @property
    def location(self) -> str:
        return self._repo_base.rstrip("/")

    async def close(self) -> None:
        await self._http.aclose()

    async def list_charts(self) -> list[ChartEntry]:
        return list(await self._index.read(self._http))

    async def listing_since(self, token: str | None, skip: Skip | None = None) -> ChartListing:
        return await self._index.listing_since(self._http, token, skip)

    async def get(self, name: str, version: str) -> ChartEntry:
        try:
            response = await self._http.request(
                "GET", f"{self._api}/{name}/{version}", expected=(200,)
            )
        except NotFound:
            raise NotFound(f"chart {name}:{version} not found in {self.location}") from None
        entries = entries_from_index({name: [response.json()]}, self._repo_base)
        if not entries:
            raise NotFound(f"chart {name}:{version} not found in {self.location}")
        return entries[0]

    async def put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        with archive.open("rb") as handle:
            files = {"chart": (f"{name}-{version}.tgz", handle, "application/gzip")}
            try:
                response = await self._http.client.post(self._api, files=files)
            except httpx.HTTPError as exc:
                raise BackendError(
                    f"{self._http.backend}: upload failed ({type(exc).__name__})"
                ) from exc
        if response.status_code == 409:
            raise AlreadyExists(
                f"chart {name}:{version} already exists in {self.location}",
                details={"name": name, "version": version},
            )
        if response.status_code not in (200, 201):
            raise _museum_error(response, self._http.backend)
        return await self.get(name, version)

    async def delete(self, name: str, version: str) -> None:
        try:
            await self._http.request("DELETE", f"{self._api}/{name}/{version}", expected=(200,))
        except NotFound:
            raise NotFound(f"chart {name}:{version} not found in {self.location}") from None

    async def fetch(self, name: str, version: str, directory: Path) -> Path:
        entry = await self.get(name, version)
        if entry.uri is None:
            raise BackendError(f"{self.location}: chart {name}:{version} has no download URL")
        return await download(
            self._http,
            entry.uri,
            directory,
            f"{name}-{version}.tgz",
            max_bytes=self._max_bytes,
            expect_digest=entry.digest,
        )


def _museum_error(response: httpx.Response, backend: str) -> NetweaveError:
    from netweave.adapters.http import default_error

    try:
        message = str(response.json().get("error"))
    except (ValueError, AttributeError):
        message = None
    error = default_error(response, backend)
    if message:
        error = type(error)(f"{backend}: {message} (HTTP {response.status_code})")
    return error


__all__ = ["ChartMuseumStore", "ConditionalIndex", "HttpChartStore", "entries_from_index"]

"""Charts in an OCI registry (``oci://host[:port]/path``), one repository per chart name.

Push goes through the Helm SDK (so the artifact is exactly what ``helm push`` makes: config
``application/vnd.cncf.helm.config.v1+json`` holding the Chart.yaml metadata, one chart layer).
Listing, digests, downloads and deletes use the registry's distribution API directly
(``/v2/_catalog``, ``tags/list``, ``manifests``, ``blobs``). Tags are chart versions with ``+``
written as ``_``, as Helm does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from netweave.errors import AlreadyExists, BackendError, InvalidInput, NotFound
from netweave.fetching import Fetcher, FetchPolicy

from netweave_helm import sdk
from netweave_helm.config import OciStorage
from netweave_helm.storage.base import ChartEntry, ChartStore
from netweave_helm.storage.remote import RegistryAuth, download, make_client

_log = logging.getLogger("netweave_helm.storage.oci")

HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_MEDIA_TYPES = (
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    "application/tar+gzip",
)
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
#: Pages of the catalog and tag lists; a registry larger than this is truncated (logged).
_MAX_PAGES = 100
_PAGE = 1000


def tag_for(version: str) -> str:
    return version.replace("+", "_")


class OciChartStore(ChartStore):
    kind = "oci"

    def __init__(self, settings: OciStorage, *, timeout: float, max_bytes: int) -> None:
        self.settings = settings
        self._max_bytes = max_bytes
        scheme = "http" if settings.use_plain_http else "https"
        password = settings.password.get_secret_value() if settings.password else None
        token = settings.token.get_secret_value() if settings.token else None
        self._http = make_client(
            f"{scheme}://{settings.host}",
            f"OCI registry {settings.host}",
            settings,
            timeout,
            auth=RegistryAuth(settings.username, password, token),
        )
        self._registry: sdk.RegistryClient | None = None
        self._credentials_dir: str | None = None
        self._registry_lock = asyncio.Lock()
        #: manifest digest -> (metadata, layer digest): manifests are immutable by digest.
        self._manifest_cache: dict[str, tuple[dict[str, Any], str]] = {}

    @property
    def location(self) -> str:
        return self.settings.url

    async def close(self) -> None:
        await self._http.aclose()
        if self._registry is not None:
            self._registry.close()
        if self._credentials_dir is not None:
            shutil.rmtree(self._credentials_dir, ignore_errors=True)

    def _repository(self, name: str) -> str:
        prefix = self.settings.repository_path
        return f"{prefix}/{name}" if prefix else name

    # -- reading ---------------------------------------------------------------------------

    async def _chart_repositories(self) -> list[str]:
        prefix = self.settings.repository_path
        found: list[str] = []
        url: str | None = f"/v2/_catalog?n={_PAGE}"
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            response = await self._http.request("GET", url, expected=(200,))
            for repo in response.json().get("repositories") or []:
                rest = repo[len(prefix) + 1 :] if prefix else repo
                if (not prefix or repo.startswith(prefix + "/")) and rest and "/" not in rest:
                    found.append(repo)
            url = _next_link(response.headers.get("Link"))
        else:
            _log.warning("%s: catalog truncated after %d pages", self.location, _MAX_PAGES)
        return found

    async def _tags(self, repository: str) -> list[str]:
        tags: list[str] = []
        url: str | None = f"/v2/{repository}/tags/list?n={_PAGE}"
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            try:
                response = await self._http.request("GET", url, expected=(200,))
            except NotFound:
                return []
            tags.extend(response.json().get("tags") or [])
            url = _next_link(response.headers.get("Link"))
        return tags

    async def _manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        response = await self._http.request(
            "GET",
            f"/v2/{repository}/manifests/{quote(reference, safe=':')}",
            expected=(200,),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        digest = response.headers.get("Docker-Content-Digest") or ""
        return digest, response.json()

    async def _describe(self, repository: str, tag: str) -> ChartEntry | None:
        try:
            digest, manifest = await self._manifest(repository, tag)
        except NotFound:
            return None
        cached = self._manifest_cache.get(digest) if digest else None
        if cached is None:
            config = manifest.get("config") or {}
            if config.get("mediaType") != HELM_CONFIG_MEDIA_TYPE:
                return None  # not a Helm chart (some other artifact in the same registry)
            layers = [
                layer
                for layer in manifest.get("layers") or []
                if layer.get("mediaType") in HELM_CHART_MEDIA_TYPES
            ]
            if not layers:
                return None
            # Registries may redirect blob reads to their storage (httpx drops the credentials
            # on a redirect to another origin).
            blob = await self._http.request(
                "GET",
                f"/v2/{repository}/blobs/{config['digest']}",
                expected=(200,),
                follow_redirects=True,
            )
            metadata = json.loads(blob.content)
            cached = (metadata, str(layers[0]["digest"]))
            if digest:
                self._manifest_cache[digest] = cached
        metadata, layer_digest = cached
        name = str(metadata.get("name", repository.rsplit("/", 1)[-1]))
        version = str(metadata.get("version", tag.replace("_", "+")))
        return ChartEntry(
            name=name,
            version=version,
            metadata=metadata,
            digest=layer_digest,
            uri=f"oci://{self.settings.host}/{repository}:{tag}",
            extra={"manifestDigest": digest, "tag": tag, "repository": repository},
        )

    async def list_charts(self) -> list[ChartEntry]:
        entries: list[ChartEntry] = []
        for repository in await self._chart_repositories():
            for tag in await self._tags(repository):
                entry = await self._describe(repository, tag)
                if entry is not None:
                    entries.append(entry)
        return entries

    async def get(self, name: str, version: str) -> ChartEntry:
        entry = await self._describe(self._repository(name), tag_for(version))
        if entry is None or entry.version != version or entry.name != name:
            raise NotFound(f"chart {name}:{version} not found in {self.location}")
        return entry

    async def fetch(self, name: str, version: str, directory: Path) -> Path:
        entry = await self.get(name, version)
        assert entry.digest is not None
        return await download(
            self._http,
            f"/v2/{entry.extra['repository']}/blobs/{entry.digest}",
            directory,
            f"{name}-{version}.tgz",
            max_bytes=self._max_bytes,
            expect_digest=entry.digest,
        )

    # -- writing ---------------------------------------------------------------------------

    async def _client(self) -> sdk.RegistryClient:
        async with self._registry_lock:
            if self._registry is None:
                self._registry = await asyncio.to_thread(self._login)
            return self._registry

    def _login(self) -> sdk.RegistryClient:
        self._credentials_dir = tempfile.mkdtemp(prefix="netweave-helm-oci-")
        credentials = Path(self._credentials_dir) / "config.json"
        with sdk.translated(f"connecting to {self.location}"):
            client = sdk.RegistryClient(
                plain_http=self.settings.use_plain_http, credentials_file=credentials
            )
            secret = self.settings.password or self.settings.token
            if secret is not None:
                # A token logs in as a fixed user name, which GHCR, Harbor robots and
                # docker-registry token setups accept.
                client.login(
                    self.settings.host,
                    self.settings.username or "netweave",
                    secret.get_secret_value(),
                    insecure=self.settings.insecure_skip_tls_verify,
                    plain_http=self.settings.use_plain_http,
                )
        return client

    async def put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        if await self._describe(self._repository(name), tag_for(version)) is not None:
            raise AlreadyExists(
                f"chart {name}:{version} already exists in {self.location}",
                details={"name": name, "version": version},
            )
        client = await self._client()
        try:
            # Helm names the pushed artifact after the chart, not the file: push a copy named
            # <name>-<version>.tgz so the SDK's checks on the file name pass.
            with tempfile.TemporaryDirectory(prefix="netweave-helm-push-") as tmp:
                staged = Path(tmp) / f"{name}-{version}.tgz"
                await asyncio.to_thread(_link_or_copy, archive, staged)
                await asyncio.to_thread(
                    _push, str(staged), self.settings.url, client, self.settings
                )
            entry = await self.get(name, version)
        except BaseException:
            # A push that failed half-way (or whose result cannot be read) may have left the
            # tag: take it back, so a retry is a new upload, not a 409.
            await asyncio.shield(self._forget(name, version))
            raise
        if entry.digest != digest:
            _log.warning(
                "%s: pushed %s:%s but the registry reports layer %s, not %s",
                self.location,
                name,
                version,
                entry.digest,
                digest,
            )
        return entry

    async def _forget(self, name: str, version: str) -> None:
        try:
            await self.delete(name, version)
        except NotFound:
            return
        except Exception as exc:
            _log.error(
                "%s: %s:%s may be left after a failed push; deleting it failed (%s)",
                self.location,
                name,
                version,
                exc,
            )
            return
        _log.warning("%s: %s:%s deleted after a failed push", self.location, name, version)

    async def delete(self, name: str, version: str) -> None:
        repository = self._repository(name)
        try:
            response = await self._http.request(
                "HEAD",
                f"/v2/{repository}/manifests/{quote(tag_for(version), safe=':')}",
                expected=(200,),
                headers={"Accept": MANIFEST_ACCEPT},
            )
        except NotFound:
            raise NotFound(f"chart {name}:{version} not found in {self.location}") from None
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise BackendError(f"{self.location}: the registry did not report a manifest digest")
        response = await self._http.request(
            "DELETE", f"/v2/{repository}/manifests/{digest}", expected=(202, 200, 404, 405)
        )
        if response.status_code == 405:
            raise BackendError(
                f"{self.location}: the registry does not allow deletes "
                "(docker-registry: storage.delete.enabled: true)"
            )
        with contextlib.suppress(KeyError):
            del self._manifest_cache[digest]


# -- pulls a client's content causes --------------------------------------------------------

#: Manifests, tag lists and token answers are small; a larger one is refused, not read.
_DOCUMENT_LIMIT = 4 << 20
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
#: The distribution spec's repository name: path components of lowercase alphanumerics
#: joined by ``.``, ``_``, ``__`` or dashes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True, slots=True)
class OciReference:
    """``oci://host[:port]/repository[:tag|@digest]`` split into its parts."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, uri: str, *, field: str) -> OciReference:
        rest = uri.removeprefix("oci://")
        host, _, path = rest.partition("/")
        digest: str | None = None
        tag: str | None = None
        if "@" in path:
            path, _, digest = path.partition("@")
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, _, tag = path.rpartition(":")
        try:
            parts = urlsplit(f"https://{host}")
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            parts = None
        if (
            not uri.startswith("oci://")
            or parts is None
            or not parts.hostname
            or parts.username is not None
            or not _REPOSITORY.match(path)
            or (tag is not None and not _TAG.match(tag))
            or (digest is not None and not _DIGEST.match(digest))
        ):
            raise InvalidInput(
                f"{field} {uri!r} is not an OCI reference oci://host[:port]/repository[:tag]",
                details={"field": field},
            )
        return cls(host=host, repository=path, tag=tag, digest=digest)

    def with_name(self, name: str) -> OciReference:
        """The repository ``name`` under this one (a dependency repository's chart)."""
        return OciReference(self.host, f"{self.repository}/{name}")


class RegistryReader:
    """Anonymous reads of one repository of an OCI registry for fetches a client's content
    causes (``packageUri: oci://…``, an ``oci://`` dependency repository), through core's
    :class:`~netweave.fetching.Fetcher`: every request — the registry's own, the token
    realm its ``WWW-Authenticate`` names, and the blob storage its redirects lead to — is
    checked by the fetch policy and connected to at the checked address (the Helm SDK's client
    would resolve names again itself). The bearer token goes to the registry only."""

    def __init__(self, fetcher: Fetcher, reference: OciReference, *, plain_http: bool) -> None:
        self._fetch = fetcher
        self.reference = reference
        self._base = f"{'http' if plain_http else 'https'}://{reference.host}/v2/"
        self._bearer: str | None = None

    @classmethod
    async def connect(cls, fetcher: Fetcher, reference: OciReference) -> RegistryReader:
        """Plain HTTP only to a registry on loopback (as ``helm --plain-http`` would be
        needed for a local test registry); HTTPS otherwise."""
        addresses = await fetcher.policy.addresses(f"https://{reference.host}", field=fetcher.field)
        plain = all(ipaddress.ip_address(a).is_loopback for a in addresses)
        return cls(fetcher, reference, plain_http=plain)

    def _url(self, path: str) -> str:
        return self._base + f"{self.reference.repository}/{path}"

    def _headers(self, accept: str | None = None) -> dict[str, str]:
        headers = {"Accept": accept} if accept else {}
        if self._bearer is not None:
            headers["Authorization"] = f"Bearer {self._bearer}"
        return headers

    async def _read(self, path: str, *, accept: str | None = None) -> tuple[int, Any, bytes]:
        fetched = await self._fetch.read(
            self._url(path), limit=_DOCUMENT_LIMIT, headers=self._headers(accept)
        )
        challenge = fetched.headers.get("WWW-Authenticate", "")
        if fetched.status == 401 and self._bearer is None and await self._token(challenge):
            fetched = await self._fetch.read(
                self._url(path), limit=_DOCUMENT_LIMIT, headers=self._headers(accept)
            )
        return fetched.status, fetched.headers, fetched.body

    async def _token(self, challenge: str) -> bool:
        """The distribution spec's token flow, anonymously: ``GET realm?service&scope``."""
        if not challenge.lower().startswith("bearer "):
            return False
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False
        params.setdefault("scope", f"repository:{self.reference.repository}:pull")
        query = urlencode({k: v for k, v in params.items() if k in {"service", "scope"}})
        joiner = "&" if "?" in realm else "?"
        answer = await self._fetch.read(f"{realm}{joiner}{query}", limit=64 * 1024)
        if answer.status != 200:
            raise self._fetch.failed(
                f"needs credentials (its token service answered HTTP {answer.status})",
                status=answer.status,
            )
        try:
            body = json.loads(answer.body)
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise self._fetch.failed("needs credentials (its token service gave no token)")
        self._bearer = token
        return True

    def _json(self, status: int, body: bytes, what: str) -> dict[str, Any]:
        if status == 401:
            raise self._fetch.failed("needs credentials (HTTP 401); anonymous pulls only")
        if status != 200:
            raise self._fetch.failed(f"{what}: HTTP {status}", status=status)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise self._fetch.failed(f"{what}: the registry's answer is not a JSON object")
        return document

    async def tags(self) -> list[str]:
        """The repository's tags (one page of up to 1000; charts rarely have more)."""
        status, _, body = await self._read(f"tags/list?n={_PAGE}")
        if status == 404:
            return []
        tags = self._json(status, body, "listing its tags").get("tags") or []
        return [t for t in tags if isinstance(t, str) and _TAG.match(t)]

    async def pull(self, reference: str, directory: Path, *, max_bytes: int) -> Path:
        """The chart layer of manifest ``reference`` (a tag or digest) as
        ``directory/chart.tgz``, checked against the manifest's digest."""
        status, _, body = await self._read(
            f"manifests/{quote(reference, safe=':')}", accept=MANIFEST_ACCEPT
        )
        if status == 404:
            raise self._fetch.failed(f"has no {reference} (HTTP 404)", status=404)
        manifest = self._json(status, body, f"reading manifest {reference}")
        config = manifest.get("config")
        if not isinstance(config, dict) or config.get("mediaType") != HELM_CONFIG_MEDIA_TYPE:
            raise self._fetch.failed(f"{reference} is not a Helm chart (its config media type)")
        layers = [
            layer
            for layer in manifest.get("layers") or []
            if isinstance(layer, dict) and layer.get("mediaType") in HELM_CHART_MEDIA_TYPES
        ]
        digest = layers[0].get("digest") if len(layers) == 1 else None
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise self._fetch.failed(f"{reference} is not a Helm chart (one chart layer)")
        size = layers[0].get("size")
        if isinstance(size, int) and size > max_bytes:
            raise self._fetch.failed(f"is larger than {max_bytes} bytes", limit=max_bytes)
        return await self._fetch.to_file(
            self._url(f"blobs/{digest}"),
            directory / "chart.tgz",
            limit=max_bytes,
            digest=digest,
            headers=self._headers(),
        )


async def pull_reference(
    uri: str,
    directory: Path,
    *,
    policy: FetchPolicy,
    version: str | None,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 - per request, see Fetcher
    field: str,
) -> Path:
    """``packageUri: oci://host/repository[:tag|@digest]`` (else tag ``version``) pulled
    through the fetch policy (see :class:`RegistryReader`); the archive's path."""
    reference = OciReference.parse(uri, field=field)
    wanted = reference.digest or reference.tag or (tag_for(version) if version else None)
    if wanted is None:
        raise InvalidInput(
            f"{field} {uri!r} names no tag and no version was given", details={"field": field}
        )
    subject = f"{field} {uri!r}"
    async with Fetcher(policy, timeout=timeout, field=field, subject=subject) as fetcher:
        reader = await RegistryReader.connect(fetcher, reference)
        return await reader.pull(wanted, directory, max_bytes=max_bytes)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _push(archive: str, remote: str, client: sdk.RegistryClient, settings: OciStorage) -> None:
    with sdk.translated(f"pushing to {remote}"):
        sdk.push(
            archive,
            remote,
            client,
            plain_http=settings.use_plain_http,
            insecure=settings.insecure_skip_tls_verify,
        )


def _next_link(header: str | None) -> str | None:
    """The next page of a paginated list (``Link: </v2/…?last=x&n=y>; rel="next"``)."""
    if not header or 'rel="next"' not in header:
        return None
    start, end = header.find("<"), header.find(">")
    if start < 0 or end <= start:
        return None
    return header[start + 1 : end]


__all__ = [
    "HELM_CHART_MEDIA_TYPES",
    "HELM_CONFIG_MEDIA_TYPE",
    "OciChartStore",
    "OciReference",
    "RegistryReader",
    "pull_reference",
    "tag_for",
]

"""Charts in object storage: S3 (and S3-compatible stores), Google Cloud Storage, Azure Blob.

The layout is the helm-s3 / helm-gcs plugins' one, so a repository shared with them stays
readable by both: ``<prefix>/index.yaml`` (a Helm repository index whose ``urls`` are absolute,
``s3://bucket/prefix/<name>-<version>.tgz``) beside the archives ``<prefix>/<name>-<version>.tgz``.

One library talks to all three stores: ``obstore`` (the Rust ``object_store`` crate), async and
streaming, with the stores' own preconditions behind one ``PutMode``: create-if-absent and
update-if-unchanged (``If-Match`` on an ETag for S3 and Azure, the object generation for GCS).

* The index is read with ``If-None-Match`` (a 304 keeps the parsed entries: parsed once per
  change, as for a remote HTTP repository) and written only as a conditional update of the
  version that was read; a lost race reads the index again and re-applies the change (bounded
  retries with jitter), so two replicas never lose each other's entries.
* An upload or a delete first claims its chart version with a small create-if-absent object
  under ``<prefix>/.netweave/claims/``; the archive is written only while the claim is held, so
  two replicas storing the same version cannot overwrite each other's archive. A claim older
  than ``claimTtl`` (its holder died) is taken over with a conditional update.
* An archive is streamed from its file in parts (multipart upload) and downloaded in chunks to
  a file, its SHA-256 checked against the index: a 100 MB chart never sits whole in memory.
  Its index entry is added only after the archive is stored, and the archive deleted again
  when that fails: readers never see an entry without its archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import random
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import obstore
import yaml
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotFoundError,
    NotModifiedError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import AzureStore, GCSStore, S3Store

from netweave_helm.config import AzureStorage, GcsStorage, ObjectStorage, S3Storage
from netweave_helm.storage.base import ChartEntry, ChartListing, ChartStore, Skip
from netweave_helm.storage.http import entries_from_index
from netweave_helm.storage.local import ARCHIVE_NAME, LocalChartStore, archive_filename

if TYPE_CHECKING:
    from obstore import GetOptions, PutMode, UpdateVersion
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

_log = logging.getLogger("netweave_helm.storage.objectstore")
_T = TypeVar("_T")

INDEX = "index.yaml"
CLAIMS = ".netweave/claims"
#: The index of a bucket may be big but not unbounded.
_MAX_INDEX_BYTES = 64 * 1024 * 1024
#: Conditional index updates tried before giving up (503) under contention.
_INDEX_ATTEMPTS = 30
#: Parts of a multipart upload: size, and how many are in flight (memory: their product).
_PART_BYTES = 8 * 1024 * 1024
_PARTS_IN_FLIGHT = 2
_encode = msgspec.json.Encoder().encode
#: obstore raises the built-in FileNotFoundError for a missing object (its NotFoundError is
#: declared, not raised), and some I/O failures as OSError.
_NOT_FOUND = (NotFoundError, FileNotFoundError)
_STORE_ERRORS = (BaseError, OSError)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Index:
    """The index as last read: its validators, its entries by name, and the parsed list."""

    e_tag: str | None = None
    version: str | None = None
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    charts: list[ChartEntry] = field(default_factory=list)
    #: False until the first read (an absent index reads as empty and ``known``).
    known: bool = False


class ObjectChartStore(ChartStore):
    """A Helm repository in a bucket (S3), a bucket (GCS) or a container (Azure Blob)."""

    def __init__(self, settings: ObjectStorage, *, timeout: float, max_bytes: int) -> None:
        self.settings = settings
        self.kind = settings.kind
        self._max_bytes = max_bytes
        self._prefix = settings.prefix
        self._store: ObjectStore = _make_store(settings, timeout)
        self._index = _Index()
        self._index_lock = asyncio.Lock()
        self._reading: asyncio.Future[_Index] | None = None
        #: Claims this instance holds but could not release (the store failed mid-call), by
        #: key, with their ETag: released on the next write, or taken back by a retry.
        self._unreleased: dict[str, str | None] = {}

    @property
    def location(self) -> str:
        return self.settings.repository_url

    def _key(self, name: str) -> str:
        return f"{self._prefix}/{name}" if self._prefix else name

    # -- errors ------------------------------------------------------------------------------

    def _credential_settings(self) -> str:
        settings = self.settings
        if isinstance(settings, S3Storage):
            return "storage.accessKeyId / storage.secretAccessKey (or the AWS default chain)"
        if isinstance(settings, GcsStorage):
            return "storage.serviceAccountKey / storage.serviceAccountPath (or the default chain)"
        return "storage.accountName / storage.accountKey / storage.sasToken"

    def _error(self, exc: Exception, doing: str) -> NetweaveError:
        """One failure, one status: what the store said, without its request dump."""
        first = str(exc).split("\n", 1)[0]
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            return BackendError(
                f"{self.kind} storage {self.location} refused the credentials while {doing}; "
                f"check {self._credential_settings()}",
                details={"repository": self.location, "setting": self._credential_settings()},
            )
        if "InvalidCertificate" in str(exc) or "certificate verify failed" in str(exc):
            return BackendError(
                f"{self.kind} storage {self.location}: its endpoint's TLS certificate is not "
                f"trusted ({doing}); check storage.caFile (storage.insecureSkipTlsVerify for "
                "testing only)",
                details={"repository": self.location, "setting": "storage.caFile"},
            )
        status = _status_of(first)
        if isinstance(exc, _NOT_FOUND) or status == 404:
            return BackendError(
                f"{self.kind} storage {self.location}: not found while {doing} — does the "
                "bucket (container) in storage.repositoryUrl exist?",
                details={"repository": self.location, "setting": "storage.repositoryUrl"},
            )
        if status in {401, 403}:
            return BackendError(
                f"{self.kind} storage {self.location} refused the credentials while {doing} "
                f"(HTTP {status}); check {self._credential_settings()}",
                details={"repository": self.location, "setting": self._credential_settings()},
            )
        if status is not None and 400 <= status < 500:
            return BackendError(
                f"{self.kind} storage {self.location} refused a request while {doing} "
                f"(HTTP {status})",
                details={"repository": self.location},
            )
        return BackendUnavailable(
            f"{self.kind} storage {self.location} is unreachable or failing while {doing}",
            details={"repository": self.location},
            retry_after=5,
        )

    # -- the index ---------------------------------------------------------------------------

    async def _read_index(self) -> _Index:
        """The index as the store holds it now. Concurrent readers share one conditional GET
        (a burst of lists costs one round trip, not one each)."""
        reading = self._reading
        if reading is None or reading.done():
            reading = self._reading = asyncio.ensure_future(self._fetch_index())
        return await asyncio.shield(reading)

    async def _fetch_index(self) -> _Index:
        """One conditional GET of the index (304: the last parse is kept)."""
        async with self._index_lock:
            current = self._index
            options: GetOptions = {}
            if current.known and current.e_tag:
                options["if_none_match"] = current.e_tag
            try:
                result = await obstore.get_async(self._store, self._key(INDEX), options=options)
            except NotModifiedError:
                return current
            except _NOT_FOUND:
                # A new repository, or a bucket that is not there: one listing tells.
                try:
                    await obstore.list_with_delimiter_async(self._store, self._prefix or None)
                except _STORE_ERRORS as exc:
                    raise self._error(exc, "reading index.yaml") from exc
                self._index = _Index(known=True)
                return self._index
            except _STORE_ERRORS as exc:
                raise self._error(exc, "reading index.yaml") from exc
            meta = result.meta
            if meta["size"] > _MAX_INDEX_BYTES:
                raise BackendError(
                    f"{self.location}/index.yaml is larger than {_MAX_INDEX_BYTES} bytes"
                )
            try:
                content = bytes(await result.bytes_async())
            except _STORE_ERRORS as exc:
                raise self._error(exc, "reading index.yaml") from exc
            entries = await asyncio.to_thread(self._parse, content)
            self._index = _Index(
                e_tag=meta["e_tag"],
                version=meta["version"],
                entries=entries,
                charts=entries_from_index({"entries": entries}, self.location),
                known=True,
            )
            return self._index

    def _parse(self, content: bytes) -> dict[str, list[dict[str, Any]]]:
        try:
            loaded = yaml.load(content, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as exc:
            raise BackendError(f"{self.location}/index.yaml is not valid YAML") from exc
        entries = loaded.get("entries") if isinstance(loaded, dict) else None
        if loaded is not None and not isinstance(entries, dict | None):
            raise BackendError(f"{self.location}/index.yaml is not a chart index")
        return {
            str(name): [dict(v) for v in versions if isinstance(v, dict)]
            for name, versions in (entries or {}).items()
            if isinstance(versions, list)
        }

    @staticmethod
    def _render(entries: dict[str, list[dict[str, Any]]]) -> bytes:
        # JSON is YAML: Helm and the plugins read it; no YAML emitter on the write path.
        document = {"apiVersion": "v1", "entries": entries, "generated": _now()}
        return _encode(document) + b"\n"

    async def _update_index(self, change: Callable[[dict[str, list[dict[str, Any]]]], _T]) -> _T:
        """Apply ``change`` to the current entries and write them only if nobody wrote the
        index meanwhile; otherwise read it again and re-apply (never last-writer-wins)."""
        for attempt in range(_INDEX_ATTEMPTS):
            # A read of its own, begun after the last attempt failed: a shared one may have
            # started before the write that beat it.
            current = await self._fetch_index()
            entries = {name: list(versions) for name, versions in current.entries.items()}
            result = change(entries)  # may refuse: AlreadyExists, NotFound
            mode = _update_of(current.e_tag, current.version)
            body = await asyncio.to_thread(self._render, entries)
            try:
                written = await obstore.put_async(
                    self._store,
                    self._key(INDEX),
                    body,
                    mode=mode,
                    use_multipart=False,
                    attributes={"ContentType": "application/x-yaml"},
                )
            except (PreconditionError, AlreadyExistsError):
                # Another writer got there first: back off a little (jittered) and retry.
                await asyncio.sleep(random.uniform(0.01, 0.05 * min(attempt + 1, 8)))  # noqa: S311
                continue
            except _STORE_ERRORS as exc:
                raise self._error(exc, "writing index.yaml") from exc
            # What was written is the index now: the next read is a 304, not a download.
            self._index = _Index(
                e_tag=written["e_tag"],
                version=written["version"],
                entries=entries,
                charts=entries_from_index({"entries": entries}, self.location),
                known=True,
            )
            return result
        raise BackendUnavailable(
            f"{self.location}/index.yaml changed under {_INDEX_ATTEMPTS} attempts to update it; "
            "retry shortly",
            details={"repository": self.location},
            retry_after=1,
        )

    # -- claims ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _claim(self, name: str, version: str) -> Any:
        """Hold ``name:version`` for this call (a create-if-absent object), released after."""
        # Not ``.tgz``: tools that rebuild the index from the archives (``helm s3 reindex``)
        # must not take a claim for a chart.
        key = self._key(f"{CLAIMS}/{name}-{version}.claim")
        body = json.dumps({"holder": secrets.token_hex(8), "at": time.time()}).encode()
        await self._release_unreleased(keep=key)
        try:
            put = await obstore.put_async(
                self._store, key, body, mode="create", use_multipart=False
            )
            e_tag = put["e_tag"]
        except AlreadyExistsError:
            e_tag = await self._take_claim(key, body)
            if e_tag is None:
                raise AlreadyExists(
                    f"chart {name}:{version} is being stored or deleted by another request",
                    details={"name": name, "version": version},
                ) from None
        except _STORE_ERRORS as exc:
            raise self._error(exc, f"claiming {name}:{version}") from exc
        self._unreleased[key] = e_tag  # until deleted below
        try:
            yield
        finally:
            try:
                await asyncio.shield(obstore.delete_async(self._store, key))
                self._unreleased.pop(key, None)
            except (*_STORE_ERRORS, asyncio.CancelledError) as exc:
                # Released on this instance's next write; by others after claimTtl.
                _log.warning("cannot release the claim %s: %s", key, str(exc).split("\n")[0])

    async def _release_unreleased(self, keep: str) -> None:
        for key, e_tag in [(k, t) for k, t in self._unreleased.items() if k != keep]:
            try:
                # Still ours (not taken over since)? A small window; claims are a safeguard.
                if (await obstore.head_async(self._store, key))["e_tag"] == e_tag:
                    await obstore.delete_async(self._store, key)
            except _NOT_FOUND:
                pass
            except _STORE_ERRORS:
                continue  # the store still fails: next time
            self._unreleased.pop(key, None)

    async def _take_claim(self, key: str, body: bytes) -> str | None:
        """Take over a claim that is this instance's own unreleased one or older than
        ``claimTtl`` (its holder died); its new ETag, or ``None`` when it is someone else's."""
        try:
            result = await obstore.get_async(self._store, key)
            held = json.loads(bytes(await result.bytes_async()))
            at = float(held.get("at", 0))
        except _NOT_FOUND:
            at, result = 0.0, None  # released meanwhile: create it again
        except (*_STORE_ERRORS, ValueError, AttributeError):
            return None
        mine = result is not None and self._unreleased.get(key) == result.meta["e_tag"]
        if result is not None and not mine and time.time() - at < self.settings.claim_ttl:
            return None
        mode = (
            _update_of(result.meta["e_tag"], result.meta["version"])
            if result is not None
            else "create"
        )
        try:
            put = await obstore.put_async(self._store, key, body, mode=mode, use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return None
        except _STORE_ERRORS as exc:
            raise self._error(exc, "taking over a claim") from exc
        if not mine:
            _log.warning("took over the stale claim %s (held since %s)", key, at)
        return put["e_tag"]

    # -- reading -----------------------------------------------------------------------------

    async def list_charts(self) -> list[ChartEntry]:
        return list((await self._read_index()).charts)

    async def listing_since(self, token: str | None, skip: Skip | None = None) -> ChartListing:
        index = await self._read_index()
        new_token = index.e_tag or "empty"
        if token is not None and token == new_token:
            return ChartListing(new_token, [], complete=False)
        entries = index.charts
        if skip is not None:
            entries = [e for e in entries if not skip(e.name, e.version)]
        return ChartListing(new_token, list(entries), complete=True)

    async def health(self) -> tuple[bool, str | None]:
        try:
            await self._read_index()
        except NetweaveError as exc:
            return False, exc.message
        return True, None

    def _archive_key(self, entry: ChartEntry) -> str:
        """The object key of an entry's archive: its URL in this bucket, relative to it, or
        (helm-s3's ``--publish``: an http(s) URL the bucket is served at) its file name here."""
        uri = entry.uri or archive_filename(entry.name, entry.version)
        parts = urlsplit(uri)
        here = urlsplit(self.location)
        if not parts.scheme:
            key = self._key(uri.lstrip("/"))
        elif parts.scheme == here.scheme and parts.netloc == here.netloc:
            key = parts.path.lstrip("/")
        elif parts.scheme in {"http", "https"} and parts.path.endswith(".tgz"):
            # Never fetched from that URL (a client's index must not make the gateway reach
            # out); the digest check guards that the object here is the one indexed.
            key = self._key(parts.path.rsplit("/", 1)[-1])
        else:
            raise BackendError(
                f"{self.location}: chart {entry.name}:{entry.version} points outside the "
                f"repository ({uri})"
            )
        if not key.endswith(".tgz") or ".." in key.split("/"):
            raise BackendError(
                f"{self.location}: chart {entry.name}:{entry.version} has no archive"
            )
        return key

    async def fetch(self, name: str, version: str, directory: Path) -> Path:
        entry = await self.get(name, version)
        key = self._archive_key(entry)
        directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - local, instant
        sha = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as out:
            part = Path(out.name)
            try:
                result = await obstore.get_async(self._store, key)
                async for chunk in result.stream(min_chunk_size=1 << 20):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise InvalidInput(
                            f"{self.location}: {key} is larger than {self._max_bytes} bytes"
                        )
                    sha.update(chunk)
                    out.write(chunk)
            except _NOT_FOUND:
                part.unlink(missing_ok=True)  # noqa: ASYNC240
                raise NotFound(
                    f"chart {name}:{version}: its archive {key} is missing from {self.location}"
                ) from None
            except _STORE_ERRORS as exc:
                part.unlink(missing_ok=True)  # noqa: ASYNC240
                raise self._error(exc, f"downloading {key}") from exc
            except BaseException:
                part.unlink(missing_ok=True)  # noqa: ASYNC240
                raise
        digest = "sha256:" + sha.hexdigest()
        if entry.digest is not None and digest != entry.digest:
            part.unlink(missing_ok=True)  # noqa: ASYNC240
            raise BackendError(f"{self.location}: {key} does not match its digest {entry.digest}")
        target = directory / archive_filename(name, version)
        part.replace(target)  # noqa: ASYNC240
        return target

    # -- writing -----------------------------------------------------------------------------

    async def put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        filename = archive_filename(name, version)
        if not ARCHIVE_NAME.match(filename):
            raise BackendError(f"cannot store {name}:{version} under a safe object name")
        key = self._key(filename)
        # The index entry as the local repository writes it, with the plugins' absolute URL.
        item = LocalChartStore._index_item(metadata, digest, filename)
        item["urls"] = [f"{self.location}/{filename}"]

        def add(entries: dict[str, list[dict[str, Any]]], *, retry: bool = True) -> None:
            versions = entries.setdefault(name, [])
            existing = [v for v in versions if str(v.get("version")) == version]
            if retry and any(_same_entry(v, item) for v in existing):
                # This write's own entry: an earlier attempt's conditional write landed but its
                # answer was lost (the client retried it and got 412). Under our claim nobody
                # else writes this version, so the entry is ours and the update is done.
                return
            if existing:
                raise AlreadyExists(
                    f"chart {name}:{version} already exists in {self.location}",
                    details={"name": name, "version": version},
                )
            versions.insert(0, item)

        async with self._claim(name, version):
            entries = {n: list(v) for n, v in (await self._read_index()).entries.items()}
            add(entries, retry=False)
            try:
                await obstore.put_async(
                    self._store,
                    key,
                    archive,
                    use_multipart=archive.stat().st_size > _PART_BYTES,  # noqa: ASYNC240
                    chunk_size=_PART_BYTES,
                    max_concurrency=_PARTS_IN_FLIGHT,
                    attributes={"ContentType": "application/gzip"},
                )
            except _STORE_ERRORS as exc:
                raise self._error(exc, f"uploading {filename}") from exc
            try:
                await self._update_index(add)
            except AlreadyExists:
                # Another tool (the plugins take no claims) indexed this version meanwhile:
                # the object under its name is theirs now, not ours to delete.
                raise
            except BaseException:
                await self._forget(key)
                raise
        return self._entry_of(name, version, item)

    async def _forget(self, key: str) -> None:
        """Delete an archive whose index entry could not be written (best effort)."""
        try:
            await asyncio.shield(obstore.delete_async(self._store, key))
        except (*_STORE_ERRORS, asyncio.CancelledError) as exc:
            _log.warning("cannot delete %s after a failed upload: %s", key, exc)

    def _entry_of(self, name: str, version: str, item: dict[str, Any]) -> ChartEntry:
        found = entries_from_index({"entries": {name: [item]}}, self.location)
        if not found:  # pragma: no cover - the item was just built with a version
            raise BackendError(f"cannot index {name}:{version}")
        return found[0]

    async def delete(self, name: str, version: str) -> None:
        await self.get(name, version)  # NotFound before any claim

        def remove(entries: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
            versions = entries.get(name) or []
            for n, item in enumerate(versions):
                if str(item.get("version")) == version:
                    rest = versions[:n] + versions[n + 1 :]
                    if rest:
                        entries[name] = rest
                    else:
                        del entries[name]
                    return item
            raise NotFound(f"chart {name}:{version} not found in {self.location}")

        async with self._claim(name, version):
            removed = await self._update_index(remove)
            try:
                key = self._archive_key(
                    entries_from_index({"entries": {name: [removed]}}, self.location)[0]
                )
            except BackendError as exc:  # an entry pointing elsewhere: nothing of ours to delete
                _log.warning("chart %s:%s: %s; its archive is left alone", name, version, exc)
                return
            try:
                await obstore.delete_async(self._store, key)
            except _NOT_FOUND:
                pass
            except _STORE_ERRORS as exc:  # the entry is gone: an orphan archive is harmless
                _log.warning("chart %s:%s: cannot delete %s: %s", name, version, key, exc)


def _same_entry(found: Mapping[str, Any], ours: Mapping[str, Any]) -> bool:
    """Whether an index entry is the one ``put`` writes (same archive, same place)."""
    return found.get("digest") == ours.get("digest") and found.get("urls") == ours.get("urls")


def _update_of(e_tag: str | None, version: str | None) -> PutMode:
    """Create-if-absent for an object never read, else update-if-unchanged: the ETag (S3,
    Azure: ``If-Match``) and the version (GCS: its generation), whichever the store gave."""
    if e_tag is None and version is None:
        return "create"
    mode: UpdateVersion = {}
    if e_tag is not None:
        mode["e_tag"] = e_tag
    if version is not None:
        mode["version"] = version
    return mode


def _status_of(message: str) -> int | None:
    marker = "status code: "
    at = message.find(marker)
    if at < 0:
        return None
    digits = message[at + len(marker) : at + len(marker) + 3]
    return int(digits) if digits.isdigit() else None


def _make_store(settings: ObjectStorage, timeout: float) -> ObjectStore:
    """The obstore client for ``settings``: credentials given, or the cloud's default chain."""
    client: ClientConfig = {
        "timeout": dt.timedelta(seconds=timeout),
        "connect_timeout": dt.timedelta(seconds=min(timeout, 10.0)),
        "allow_invalid_certificates": settings.insecure_skip_tls_verify,
    }
    endpoint = settings.endpoint
    if endpoint is not None and endpoint.startswith("http://"):
        client["allow_http"] = True
    if settings.ca_file is not None:
        try:
            client["root_certificate"] = settings.ca_file.read_bytes()
        except OSError as exc:
            raise BackendError(f"storage.caFile {settings.ca_file}: {exc.strerror}") from exc
    # Retries are the store client's (backoff on 5xx and connection errors), kept short: a
    # dead store answers 503 in seconds, not after the library's default three minutes.
    retry: RetryConfig = {
        "max_retries": 2,
        "retry_timeout": dt.timedelta(seconds=min(timeout, 15.0)),
        "backoff": {
            "init_backoff": dt.timedelta(milliseconds=100),
            "max_backoff": dt.timedelta(seconds=2),
            "base": 2,
        },
    }
    try:
        if isinstance(settings, S3Storage):
            return _s3(settings, client, retry)
        if isinstance(settings, GcsStorage):
            return _gcs(settings, client, retry)
        return _azure(settings, client, retry)
    except _STORE_ERRORS as exc:
        message = f"{settings.kind} storage {settings.repository_url}: {str(exc).splitlines()[0]}"
        if isinstance(settings, GcsStorage) and (
            settings.service_account_key is not None or settings.service_account_path is not None
        ):
            # obstore reads the key here (JSON, then its PEM): its words name neither setting.
            setting = "storage.serviceAccountKey / storage.serviceAccountPath"
            raise BackendError(
                f"{message}; check {setting} (a service account key file's JSON, or its path)",
                details={"repository": settings.repository_url, "setting": setting},
            ) from exc
        raise BackendError(message) from exc


def _s3(settings: S3Storage, client: ClientConfig, retry: RetryConfig) -> ObjectStore:
    config: dict[str, Any] = {}
    if settings.region:
        config["region"] = settings.region
    if settings.endpoint:
        config["endpoint"] = settings.endpoint
    if settings.access_key_id and settings.secret_access_key:
        config["access_key_id"] = settings.access_key_id
        config["secret_access_key"] = settings.secret_access_key.get_secret_value()
        if settings.session_token is not None:
            config["session_token"] = settings.session_token.get_secret_value()
    virtual = settings.virtual_hosted_style
    config["virtual_hosted_style_request"] = (
        virtual if virtual is not None else settings.endpoint is None
    )
    return S3Store(settings.bucket, client_options=client, retry_config=retry, **config)


def _gcs(settings: GcsStorage, client: ClientConfig, retry: RetryConfig) -> ObjectStore:
    config: dict[str, Any] = {}
    if settings.service_account_key is not None:
        config["service_account_key"] = settings.service_account_key.get_secret_value()
    elif settings.service_account_path is not None:
        config["service_account"] = str(settings.service_account_path)
    if settings.endpoint:
        config["base_url"] = settings.endpoint
    return GCSStore(settings.bucket, client_options=client, retry_config=retry, **config)


def _azure(settings: AzureStorage, client: ClientConfig, retry: RetryConfig) -> ObjectStore:
    config: dict[str, Any] = {}
    if settings.account_name:
        config["account_name"] = settings.account_name
    if settings.account_key is not None:
        config["account_key"] = settings.account_key.get_secret_value()
    if settings.sas_token is not None:
        config["sas_key"] = settings.sas_token.get_secret_value()
    if settings.endpoint:
        config["endpoint"] = settings.endpoint
    return AzureStore(settings.bucket, client_options=client, retry_config=retry, **config)


__all__ = ["ObjectChartStore"]
